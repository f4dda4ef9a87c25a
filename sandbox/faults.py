"""Commit faults the ERP simulators share (SAP B1 orders, IFS bound actions): the state change is made,
then the answer is lost (502 or a dropped connection) — the "did it happen?" case a write-back must
survive without acting twice. (The Pipedrive sandbox has its own: other modes, per-method counts.)"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

MODES = ("502", "drop", "mixed")


@dataclass
class CommitFaults:
    """A seeded share of commits answered 502 or with a dropped connection ("we never heard")."""

    fraction: float = 0.0
    mode: str = "mixed"
    seed: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def configure(self, data: dict[str, Any]) -> None:
        with self._lock:
            if "fraction" in data:
                fraction = float(data["fraction"])
                if not 0 <= fraction <= 1:
                    raise ValueError("fraction must be between 0 and 1")
                self.fraction = fraction
            if "mode" in data:
                if str(data["mode"]) not in MODES:
                    raise ValueError(f"mode must be one of {', '.join(MODES)}")
                self.mode = str(data["mode"])
            self.seed = int(data.get("seed", self.seed))
            self._rng.seed(self.seed)

    def as_dict(self) -> dict[str, Any]:
        return {"fraction": self.fraction, "mode": self.mode, "seed": self.seed}

    def draw(self) -> str | None:
        """None (answer normally), "502" or "drop"."""
        if not self.fraction:
            return None
        with self._lock:
            if self._rng.random() >= self.fraction:
                return None
            if self.mode == "mixed":
                return "502" if self._rng.random() < 0.5 else "drop"
            return self.mode
