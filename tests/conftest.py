import pytest
import torch

from tuna.config import get_preset

pytest_plugins = ["serve_helpers"]  # the serve tests' pipe / server / client fixtures


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


@pytest.fixture
def tiny_cfg():
    return get_preset("tiny")


@pytest.fixture
def tiny_model(tiny_cfg):
    from tuna.model.tuna import TunaModel

    model = TunaModel(tiny_cfg)
    model.init_weights()
    return model


@pytest.fixture(scope="session")
def byte_tokenizer():
    from tuna.tokenizer import small_tokenizer

    return small_tokenizer()
