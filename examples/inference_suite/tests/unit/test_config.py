import unittest

import pytest


@pytest.mark.pre_merge
@pytest.mark.gpu_0
@pytest.mark.unit
@pytest.mark.config
class TestServeConfig(unittest.TestCase):
    def test_defaults(self) -> None:
        config = {"max_batch": 8, "port": 8000}
        self.assertEqual(config["port"], 8000)
