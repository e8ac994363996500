"""Schemathesis fuzzes every operation of the OpenAPI schema: whatever it sends, no 5xx, and every
answer matches the documented status codes and schemas. Bounded: few examples, tight server limits."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tuna.config import get_preset
from tuna.model.tuna import TunaModel
from tuna.pipeline import TunaPipeline
from tuna.serve import ServeConfig, create_app
from tuna.serve.background import BackgroundServer
from tuna.tokenizer import small_tokenizer

# small limits keep every generated request cheap: at most 4 steps, 64 px, 8 tokens, 2 images
LIMITS = ServeConfig(
    model_id="tiny",
    default_steps=1,
    max_steps=4,
    max_image_side=64,
    max_images_per_request=2,
    default_max_tokens=4,
    max_tokens_limit=8,
    max_body_bytes=256 * 1024,
    request_timeout_s=20,
)


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def server():
    model = TunaModel(get_preset("tiny"))
    model.init_weights()
    model.tokenizer = small_tokenizer()
    with BackgroundServer(create_app(TunaPipeline(model), LIMITS)) as running:
        yield running


def operations(url: str) -> dict:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    return {op.label: op for op in (result.ok() for result in schema.get_all_operations())}


def served_model(pair):
    """Half the valid cases name the served model: random names would only ever test the 404 path."""
    case, fix = pair
    if fix and case.operation.label == "POST /v1/chat/completions" and isinstance(case.body, dict):
        case.body["model"] = LIMITS.model_id
    if fix and case.path_parameters and "model_id" in case.path_parameters:
        case.path_parameters["model_id"] = LIMITS.model_id
    return case


# Driven by hand rather than by schemathesis' pytest plugin, whose fixture loader does not support pytest 9.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzed_requests_never_get_a_server_error(server, mode):
    found = operations(server.url)
    assert {"POST /v1/chat/completions", "POST /v1/images/generations", "POST /v1/images/edits"} <= set(found)
    for label, operation in found.items():

        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        @given(case=st.tuples(operation.as_strategy(generation_mode=mode), st.booleans()).map(served_model))
        def fuzz(case):
            case.call_and_validate(base_url=server.url, checks=CHECKS, timeout=30)

        try:
            fuzz()
        except Unsatisfiable:  # nothing can be invalid about a GET without parameters
            assert mode is GenerationMode.NEGATIVE
        except Exception as err:
            raise AssertionError(f"{label} ({mode.value}): {err}") from err
