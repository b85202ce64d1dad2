"""Which notebook frontend the kernel serves, where it changes what the widgets can do.

Why: Colab shows widget updates only while the cell that sends them runs (googlecolab/colabtools
#3373, open): a background thread's updates after its cell ended stay invisible until another
cell runs. ``run_batch(background=True)`` therefore runs in the foreground there, with a notice.
"""

from __future__ import annotations

import sys

__all__ = ["COLAB_BACKGROUND_NOTICE", "in_colab"]

COLAB_BACKGROUND_NOTICE = (
    "seeds_nb: Colab shows widget updates only while their cell runs (googlecolab/colabtools#3373), so "
    "background=True runs in the foreground here: this cell waits for the batch. To stop it early, interrupt "
    "the cell (Runtime > Interrupt execution): finished answers are kept in client.last_run.result.")


def in_colab() -> bool:
    """True in a Google Colab kernel (it imports ``google.colab`` at start-up)."""
    return "google.colab" in sys.modules
