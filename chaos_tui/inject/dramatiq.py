"""Worker injectors for Dramatiq: `broker.add_middleware(ChaosMiddleware.from_env())`.

How it fits Dramatiq's worker (dramatiq/worker.py, process_message):
- `before_process_message` decides and acts: a delay sleeps there, a crash ends the process
  there. A failure must be a `MiddlewareError` to leave that hook (the broker logs and
  swallows any other exception a middleware raises), so it is raised as
  `InjectedMessageFailure`; the worker then treats the delivery as failed, the actor does not
  run, and the Retries middleware retries it (or dead-letters it past max_retries).
- `partial` needs to stop the actor's own work: the actor's function is wrapped (once, the
  first time a partial injector hits it) so that `chaos_tui.inject.checkpoint()` raises
  inside it, or, if the actor never calls it, the delivery is failed right after the actor
  returns, before Dramatiq acks it (the `after_*` hooks cannot do that: the broker swallows
  their exceptions too).
Add it last (the default), so every other middleware has run before it acts.
"""

from __future__ import annotations

import threading
from typing import Any

from dramatiq.middleware import Middleware, MiddlewareError

from chaos_tui.inject.core import (
    InjectedFailure,
    InjectorClient,
    armed,
    call_guarded,
    cuts_the_actor,
    disarm,
)


class InjectedMessageFailure(InjectedFailure, MiddlewareError):
    """A `fail` injector's error, in a form Dramatiq lets out of before_process_message."""


class ChaosMiddleware(Middleware):
    def __init__(self, client: InjectorClient) -> None:
        self.client = client
        self._wrapping = threading.Lock()

    @classmethod
    def from_env(cls, **kwargs: Any) -> ChaosMiddleware:
        """The agent from the environment (see InjectorClient.from_env); off without one."""
        return cls(InjectorClient.from_env(**kwargs))

    def before_process_message(self, broker: Any, message: Any) -> None:
        if not self.client._live:  # the common case, before reading the message (a proxy)
            return
        action = self.client.decide(message.queue_name, message.actor_name, message.message_id)
        if action is None:
            return
        if action.then is not None and cuts_the_actor(action.then.spec):
            self._guard_actor(broker.get_actor(message.actor_name))
        try:
            self.client.perform(action)
        except InjectedFailure as exc:
            raise InjectedMessageFailure(str(exc)) from None

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        if armed():
            disarm()  # whatever happened, a partial never outlives its delivery

    def after_skip_message(self, broker: Any, message: Any) -> None:
        disarm()

    def _guard_actor(self, actor: Any) -> None:
        """Wrap the actor's function in the partial cut, once."""
        with self._wrapping:
            fn = actor.fn
            if getattr(fn, "_chaos_guarded", False):
                return

            def guarded(*args: Any, **kwargs: Any) -> Any:
                return call_guarded(fn, *args, **kwargs)

            guarded._chaos_guarded = True  # type: ignore[attr-defined]
            actor.fn = guarded
