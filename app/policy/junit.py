"""JUnit XML for policy test runs, the report format CI systems read (GitHub, GitLab, Jenkins).

One `<testsuite>` per suite file, one `<testcase>` per expanded check; a wrong decision is a
`<failure>`, a suite that could not run is an `<error>`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from app.policy.testing import RunResult, SuiteResult


def _suite_element(suite: SuiteResult) -> ET.Element:
    failures = len(suite.failed)
    element = ET.Element(
        "testsuite",
        {
            "name": suite.name,
            "file": suite.file,
            "tests": str(len(suite.results) or (1 if suite.error else 0)),
            "failures": str(failures),
            "errors": "1" if suite.error else "0",
            "skipped": "0",
            "time": f"{suite.seconds:.6f}",
        },
    )
    if suite.error:
        case = ET.SubElement(
            element, "testcase", {"classname": suite.name, "name": "load", "file": suite.file}
        )
        ET.SubElement(
            case, "error", {"message": suite.error, "type": "SuiteError"}
        ).text = suite.error
        return element
    for result in suite.results:
        case = ET.SubElement(
            element,
            "testcase",
            {
                "classname": suite.name,
                "name": result.name,
                "file": suite.file,
                "line": str(result.check.line),
                "time": f"{result.seconds:.6f}",
            },
        )
        if result.failure:
            failure = ET.SubElement(
                case, "failure", {"message": result.failure, "type": "PolicyTestFailure"}
            )
            failure.text = f"{result.failure}\n{result.trace}"
    return element


def junit_xml(run: RunResult) -> bytes:
    root = ET.Element("testsuites", {"name": "oms-auth policy tests"})
    total = failures = errors = 0
    seconds = 0.0
    for suite in run.suites:
        element = _suite_element(suite)
        root.append(element)
        total += int(element.get("tests", "0"))
        failures += int(element.get("failures", "0"))
        errors += int(element.get("errors", "0"))
        seconds += suite.seconds
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    root.set("time", f"{seconds:.6f}")
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def write_junit(run: RunResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(junit_xml(run))
