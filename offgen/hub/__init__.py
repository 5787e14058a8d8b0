"""offgen.hub: verified downloads of the published archives, hub push/pull and dataset cards.

Modules, one job each:

* :mod:`offgen.hub.http`: resumable HTTP / local download of one file from ordered mirrors.
* :mod:`offgen.hub.extract`: safe, streaming extraction of ``.tar`` / ``.tar.xz`` archives.
* :mod:`offgen.hub.lockfile`: sizes, sha256 and hub commits recorded next to downloaded data.
* :mod:`offgen.hub.mirrors`: the URLs tried for a (dataset, game), base-URL overrides.
* :mod:`offgen.hub.stream`: convert an archive straight from its tar stream into stores.
* :mod:`offgen.hub.download`: the ``offgen-download`` pipeline (parallel, locked, resumable).
* :mod:`offgen.hub.hf`: push / pull offgen stores to an HF-compatible hub.
* :mod:`offgen.hub.card`: dataset cards from a store's measured statistics.
* :mod:`offgen.hub.sources`: where ``offgen.load`` looks for a missing dataset, in order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from offgen._lazy import lazy_attributes

if TYPE_CHECKING:
    from offgen.hub.card import card_text, write_card
    from offgen.hub.download import GameResult, download_dataset, verify_archives
    from offgen.hub.hf import PullResult, PushResult, pull_store, push_card, push_store
    from offgen.hub.stream import convert_archive

__all__ = [
    "GameResult",
    "PullResult",
    "PushResult",
    "card_text",
    "convert_archive",
    "download_dataset",
    "pull_store",
    "push_card",
    "push_store",
    "verify_archives",
    "write_card",
]

# Where each public name lives. Imported on first use: the modules pull in numpy, zarr and
# huggingface_hub, which `import offgen.hub` alone should not pay for.
_HOME = {
    "GameResult": "offgen.hub.download",
    "download_dataset": "offgen.hub.download",
    "verify_archives": "offgen.hub.download",
    "PullResult": "offgen.hub.hf",
    "PushResult": "offgen.hub.hf",
    "pull_store": "offgen.hub.hf",
    "push_card": "offgen.hub.hf",
    "push_store": "offgen.hub.hf",
    "card_text": "offgen.hub.card",
    "write_card": "offgen.hub.card",
    "convert_archive": "offgen.hub.stream",
}


__getattr__, __dir__ = lazy_attributes("offgen.hub", _HOME, __all__, globals())
