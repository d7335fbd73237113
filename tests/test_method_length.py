"""setup/method_length.py, the lint check "no production method over 50 lines": it
flags a long method and passes a short one, and leaves tests/ and migrations/ out."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHECK = REPO / "setup" / "method_length.py"


def method(name, body_lines):
    body = "".join(f"        x = {i}\n" for i in range(body_lines))
    return f"    def {name}(self):\n{body}        return x\n"


def run_check(*paths):
    return subprocess.run(
        [sys.executable, str(CHECK), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def write_model(folder, text):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.py"
    path.write_text("class Model:\n" + text, encoding="utf-8")
    return path


def test_long_method_is_flagged(tmp_path):
    # def line + 50 assignments + return: 52 lines.
    write_model(tmp_path / "addon" / "models", method("_too_long", 50))
    result = run_check(tmp_path / "addon")
    assert result.returncode == 1, result.stdout
    assert "Model._too_long 52 lines" in result.stdout


def test_method_of_fifty_lines_passes(tmp_path):
    # def line + 48 assignments + return: exactly 50 lines.
    write_model(
        tmp_path / "addon" / "models", method("_short", 48) + method("_tiny", 1)
    )
    result = run_check(tmp_path / "addon")
    assert result.returncode == 0, result.stdout
    assert result.stdout == ""


def test_nested_function_is_counted(tmp_path):
    inner = "".join(f"            y = {i}\n" for i in range(55))
    text = (
        "    def _outer(self):\n        def inner():\n"
        + inner
        + "        return inner\n"
    )
    write_model(tmp_path / "addon" / "models", text)
    result = run_check(tmp_path / "addon")
    assert result.returncode == 1
    assert "Model._outer " in result.stdout
    assert "Model._outer.inner " in result.stdout


def test_tests_and_migrations_are_not_production(tmp_path):
    addon = tmp_path / "addon"
    write_model(addon / "tests", method("test_long", 80))
    write_model(addon / "migrations" / "18.0.1.1", method("migrate", 80))
    result = run_check(addon)
    assert result.returncode == 0, result.stdout
