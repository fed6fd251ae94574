# Copyright: Isobar contributors
# Apache-2.0
"""Stand-in for ansible-test's pip bootstrap script (get-pip-<version>.py, from ci-files.testing.ansible.com, which
this machine cannot reach): pip from the interpreter's own ensurepip, then the pip version and packages ansible-test
asked for, from PyPI. tools/ansible-test/sanity puts it where ansible-test looks for its cached copy."""
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
# get-pip's own options, which pip install does not know
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install", *args])
