"""Helpers for the platform's own signals: model inference and cache lookups, by tenant.

They read the tenant from the OpenTelemetry context, so code deep inside a request needs no
tenant argument. The module-level functions target the last `instrument()` call and do nothing
before one (library code stays usable in scripts and unit tests without set-up).
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from opentelemetry import trace

from collectors.app.contract import Instrumented, active
from collectors.app.tenant import current_tenant

F = TypeVar("F", bound=Callable[..., Any])


class InferenceRecorder:
    """Times one inference (context manager) or every call of a function (decorator).

    Inside the block, set `input_tokens` / `output_tokens` (or call `tokens()`); they are added
    to `model_inference_tokens_total` when the block ends, even if it raised.
    """

    def __init__(self, instrumentation: Instrumented | None, model: str) -> None:
        self._inst = instrumentation
        self.model = model
        self.input_tokens = 0
        self.output_tokens = 0
        self._started = 0.0
        self._span: Any = None

    def tokens(self, input: int = 0, output: int = 0) -> None:
        self.input_tokens += int(input)
        self.output_tokens += int(output)

    def __enter__(self) -> InferenceRecorder:
        self.input_tokens = self.output_tokens = 0
        if self._inst is not None:
            self._span = self._inst.tracer.start_as_current_span("model.inference", attributes={"model": self.model})
            self._span.__enter__()
        self._started = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        duration = time.perf_counter() - self._started
        if self._inst is None:
            return
        span = trace.get_current_span()
        span.set_attribute("model.input_tokens", self.input_tokens)
        span.set_attribute("model.output_tokens", self.output_tokens)
        self._inst.metrics.inference(current_tenant(), self.model, duration, self.input_tokens, self.output_tokens)
        self._span.__exit__(exc_type, exc, tb)

    def __call__(self, func: F) -> F:
        """Decorator form: each call is timed; a fresh recorder per call keeps calls independent."""
        inst, model = self._inst, self.model
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with InferenceRecorder(inst or _active(), model):
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with InferenceRecorder(inst or _active(), model):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def _active() -> Instrumented | None:
    return active()


def record_inference(model: str) -> InferenceRecorder:
    """`with record_inference(model="gpt-small") as r: ...; r.tokens(input=12, output=40)`."""
    return InferenceRecorder(_active(), model)


def cache_hit(cache: str, count: int = 1) -> None:
    inst = _active()
    if inst is not None:
        inst.cache_hit(cache, count)


def cache_miss(cache: str, count: int = 1) -> None:
    inst = _active()
    if inst is not None:
        inst.cache_miss(cache, count)


def record_cache(cache: str, hit: bool, count: int = 1) -> None:
    """Record a lookup outcome, e.g. `record_cache("embeddings", value is not None)`."""
    (cache_hit if hit else cache_miss)(cache, count)
