"""A simulated GitHub organisation and a server on loopback that serves it (REST + GraphQL).

``build_org(end=...)`` generates the org (deterministic for a seed); ``SandboxServer(org,
clock=...)`` serves it as of ``clock.now()`` for ``flowbot demo`` and the tests.
"""

from jobs.sandbox.org import Org, build_org
from jobs.sandbox.server import SandboxServer

__all__ = ["Org", "SandboxServer", "build_org"]
