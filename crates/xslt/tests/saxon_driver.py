"""Runs XSLT cases through SaxonC-HE (the `saxonche` package) for the
second-oracle differential test (`saxon.rs`).

Usage: python saxon_driver.py OUT_DIR CASE_DIR...

Every CASE_DIR holds `style.xsl`, `input.xml` and optionally `params.txt`
(`name=value` lines, passed as xs:untypedAtomic like our engine's
parameters). For each case the serialized result (as `xsl:output` asks)
is written to OUT_DIR/<case>.out; if Saxon rejects the stylesheet or the
transformation fails, the message goes to OUT_DIR/<case>.err instead.
All cases run in one process (one JVM-less SaxonC start-up).
The last line printed is `saxon-driver: N cases` so the caller can tell
a crashed driver from a finished one.
"""

import os
import sys

from saxonche import PySaxonProcessor


def read_params(case_dir):
    params = {}
    path = os.path.join(case_dir, "params.txt")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f.read().splitlines():
                if "=" in line:
                    key, value = line.split("=", 1)
                    params[key.strip()] = value
    return params


def run_case(proc, xslt, case_dir, out_dir):
    name = os.path.basename(os.path.normpath(case_dir))
    out_path = os.path.join(out_dir, name + ".out")
    err_path = os.path.join(out_dir, name + ".err")
    for stale in (out_path, err_path):
        if os.path.exists(stale):
            os.remove(stale)
    try:
        exe = xslt.compile_stylesheet(
            stylesheet_file=os.path.join(case_dir, "style.xsl")
        )
        if exe is None:
            raise RuntimeError(xslt.error_message or "compile failed")
        exe.set_save_xsl_message(True)
        for key, value in read_params(case_dir).items():
            exe.set_parameter(key, proc.make_atomic_value("untypedAtomic", value))
        exe.transform_to_file(
            source_file=os.path.join(case_dir, "input.xml"), output_file=out_path
        )
        if exe.exception_occurred:
            raise RuntimeError(exe.error_message)
        if not os.path.exists(out_path):
            # An empty result may leave no file behind.
            open(out_path, "wb").close()
    except Exception as e:  # noqa: BLE001 - every failure is reported per case
        if os.path.exists(out_path):
            os.remove(out_path)
        with open(err_path, "w", encoding="utf-8") as f:
            f.write(str(e))


def main():
    out_dir = sys.argv[1]
    cases = sys.argv[2:]
    os.makedirs(out_dir, exist_ok=True)
    with PySaxonProcessor(license=False) as proc:
        xslt = proc.new_xslt30_processor()
        for case_dir in cases:
            run_case(proc, xslt, case_dir, out_dir)
        print(f"saxon-driver: {len(cases)} cases ({proc.version})")


if __name__ == "__main__":
    main()
