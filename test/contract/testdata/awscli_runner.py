"""Run many AWS CLI commands in one Python process.

The tests drive keyless with the real AWS CLI. Starting `aws` costs about
half a second of interpreter start-up per command, so scenario tests feed
commands here instead: each line on stdin is a JSON object
{"args": [...], "env": {...}} (a null value unsets a variable); for each, this runs the AWS CLI's own entry
point (awscli.clidriver.create_clidriver().main) with that environment and
writes one JSON line {"code", "stdout", "stderr"} to stdout. It is the same
code path as the `aws` command, minus the start-up.
"""
import io
import json
import os
import sys
import contextlib

from awscli.clidriver import create_clidriver


def main():
    base_env = dict(os.environ)
    out = sys.stdout
    for line in sys.stdin:
        req = json.loads(line)
        os.environ.clear()
        os.environ.update(base_env)
        for k, v in req.get("env", {}).items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        stdout, stderr = io.StringIO(), io.StringIO()
        code = 0
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                code = create_clidriver().main(req["args"])
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            except Exception as e:  # report, keep serving
                stderr.write("runner: %r\n" % (e,))
                code = 255
        out.write(json.dumps({"code": code, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
