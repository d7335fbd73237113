"""Read a pytest JUnit XML report; print "passed failed skipped"."""

import sys
import xml.etree.ElementTree as ET


def main(path, rc):
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        print(0, 1, 0)  # pytest did not even write its report
        return
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    tests = sum(int(s.get("tests", 0)) for s in suites)
    bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    if int(rc) not in (0, 1) and bad == 0:
        bad = 1  # interrupted, internal error, usage error or no tests collected
    print(tests - bad - skipped, bad, skipped)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
