"""offgen.hub: verified downloads of the published archives, hub push/pull and dataset cards.

Modules, one job each:

* :mod:`offgen.hub.http`: resumable HTTP / local download of one file from ordered mirrors.
* :mod:`offgen.hub.extract`: safe, streaming extraction of ``.tar`` / ``.tar.xz`` archives.
* :mod:`offgen.hub.lockfile`: sizes, sha256 and hub commits recorded next to downloaded data.
* :mod:`offgen.hub.mirrors`: the URLs tried for a (dataset, game), base-URL overrides.
* :mod:`offgen.hub.download`: the ``offgen-download`` pipeline (parallel, locked, resumable).
* :mod:`offgen.hub.hf`: push / pull offgen stores to an HF-compatible hub.
* :mod:`offgen.hub.card`: dataset cards from a store's measured statistics.
* :mod:`offgen.hub.sources`: where ``offgen.load`` looks for a missing dataset, in order.
"""

__all__: list[str] = []
