"""Turn Odoo 18.0's requirements.txt into pins that install on this Python.

Odoo pins old sdists for Python 3.11 that no longer build with current setuptools;
the pins it gives for Python 3.12 ship wheels for 3.11 too, so we evaluate the
environment markers as if we were on 3.12 and keep everything else.
"""

import sys

from packaging.markers import default_environment
from packaging.requirements import Requirement

TARGET = "3.12"


def main(path):
    env = default_environment()
    env.update(python_version=TARGET, python_full_version=TARGET + ".0")
    for raw in open(path, encoding="utf-8"):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        if req.marker and not req.marker.evaluate(env):
            continue
        req.marker = None
        print(req)


if __name__ == "__main__":
    main(sys.argv[1])
