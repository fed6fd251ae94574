"""plugins/filter/wheel_requirements.py: the hash-pinned requirements the client venv installs with."""
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.isobar.pipeline.plugins.filter.wheel_requirements import hashed_requirements

A, B, C = "a" * 64, "b" * 64, "c" * 64
INDEX = (f"{A}  kafka_python-3.0.12-py3-none-any.whl\n"
         f"{B}  PyYAML-6.0.3-cp311-cp311-manylinux_2_17_x86_64.whl\n"
         f"{C}  pyyaml-6.0.3-cp313-cp313-manylinux_2_17_x86_64.whl\n")


def test_one_line_per_project_with_every_hash():
    text = hashed_requirements(INDEX, ["kafka-python==3.0.12", "PyYAML==6.0.3"])
    assert text == (f"kafka-python==3.0.12 --hash=sha256:{A}\n"
                    f"pyyaml==6.0.3 --hash=sha256:{B} --hash=sha256:{C}\n")


@pytest.mark.parametrize("index, requirements, message", [
    (INDEX, ["kafka-python==3.0.13"], "kafka-python 3.0.12 there"),
    (INDEX, ["influxdb-client==1.50.0"], "no influxdb-client there"),
    (INDEX, ["kafka-python"], "pinned as name==version"),
    (INDEX + f"{A}  kafka_python-3.0.11-py3-none-any.whl\n", [], "two versions of kafka-python"),
    (f"{A[:10]}  kafka_python-3.0.12-py3-none-any.whl\n", [], "line 1"),
    (f"{A}  kafka_python-3.0.12.tar.gz\n", [], "line 1"),
    ("", [], "no wheel"),
])
def test_refuses_an_index_that_does_not_match(index, requirements, message):
    with pytest.raises(AnsibleFilterError, match=message):
        hashed_requirements(index, requirements)
