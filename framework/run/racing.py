"""Racing rounds (`aebench run --decide`): spend the budget only where a decision is still open.

After the first round (every sampler, the run's seeds), each further round gives more seeds, as ordinary
cells, only to the samplers that can still be first (the decision's contenders, `aebench.verdict.decision`),
until no pair among them is open or the budget is spent. A sampler that drops out keeps the numbers of
the rounds it ran, marked with the round it left.

Seeds per contender grow 1 -> 3 -> 6 -> 12 -> ...: two seeds give a Student-t interval with one degree of
freedom (t = 12.7), wider than one seed's bootstrap interval, so the second round goes straight to three;
after that each round doubles the count: intervals narrow by about 1.4 per round while the samplers that
fall behind stop costing anything.

The budget is counted in decoded images (deterministic: the same seed and image budget give the same
rounds and the same document) or in wall-clock time (the rounds it bought are recorded). A round that
would overrun the budget is cut to the seeds that fit, evenly over the contenders; none fit, the race ends
and says which pairs are still open and about what budget would settle them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from aebench.errors import OptionError
from aebench.results.schema import Race as RaceSection
from aebench.results.schema import RoundRecord as RoundSection
from aebench.verdict.decision import Decision

DEFAULT_BUDGET_FACTOR = 4  # without --budget: four times the images of the first round
MAX_ROUNDS = 12


@dataclass(frozen=True)
class Budget:
    """What a race may spend: decoded images (`images`) or seconds of wall-clock time (`seconds`); one of
    them, or neither (the default: `DEFAULT_BUDGET_FACTOR` times the first round's images)."""

    images: int | None = None
    seconds: float | None = None

    @classmethod
    def parse(cls, text: str | int | None) -> "Budget":
        """'15m', '900s', '1h', '1h30m' (time) or '20000' / '20000 images' (decoded images)."""
        if text is None or text == "":
            return cls()
        raw = str(text).strip().lower().replace(" ", "")
        number = re.fullmatch(r"([0-9]+)(images?)?", raw)
        if number:
            images = int(number.group(1))
            if images <= 0:
                raise OptionError(f"--budget must be positive, got {text!r}.")
            return cls(images=images)
        parts = re.findall(r"([0-9]*\.?[0-9]+)(h|m|min|s)", raw)
        if not parts or "".join(a + b for a, b in parts) != raw:
            raise OptionError(f"Cannot read --budget {text!r}; give a duration such as 15m, 900s or 1h30m, "
                              f"or a number of decoded images such as 20000.")
        seconds = sum(float(a) * {"h": 3600, "m": 60, "min": 60, "s": 1}[b] for a, b in parts)
        if seconds <= 0:
            raise OptionError(f"--budget must be positive, got {text!r}.")
        return cls(seconds=seconds)

    def text(self) -> str:
        if self.images is not None:
            return f"{self.images} images"
        if self.seconds is not None:
            return f"{self.seconds:g} s"
        return f"{DEFAULT_BUDGET_FACTOR}x the first round's images"

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "seconds": self.seconds, "text": self.text()}


def next_seed_count(current: int) -> int:
    """Seeds per contender in the next round: 1 -> 3, then doubling."""
    return 3 if current < 3 else 2 * current


@dataclass
class RoundRecord:
    """One round: who ran, how many seeds each had after it, what it cost, and where the decision stood."""

    round: int
    samplers: list[str]
    seeds: int  # seeds per sampler of this round, after it
    cells: int  # cells this round added
    images: int  # decoded images this round added
    seconds: float  # wall-clock time of this round
    end: str  # the decision's end after this round
    contenders: list[str]
    open_pairs: int

    def to_dict(self) -> RoundSection:
        return RoundSection(**asdict(self))  # type: ignore[typeddict-item]


@dataclass
class Race:
    """The rounds of one run. `schedule` maps each sampler label to its seeds (the cells it gets);
    `left` the round after which a sampler stopped getting seeds."""

    budget: Budget
    n: int  # decoded images per cell
    first_seed: int
    schedule: dict[str, list[int]]
    rounds: list[RoundRecord] = field(default_factory=list)
    left: dict[str, int] = field(default_factory=dict)
    stopped: str = ""  # 'decided', 'budget', 'no_contenders', 'rounds'
    spent_images: int = 0
    spent_seconds: float = 0.0
    first_round_images: int = 0

    def cap_images(self) -> int | None:
        if self.budget.images is not None:
            return self.budget.images
        if self.budget.seconds is None:
            return DEFAULT_BUDGET_FACTOR * self.first_round_images
        return None

    def record(self, decision: Decision, added_cells: int, seconds: float, samplers: list[str]) -> None:
        """Close the round that just ran (its cells are in the document)."""
        images = added_cells * self.n
        self.spent_images += images
        self.spent_seconds += seconds
        if not self.rounds:
            self.first_round_images = images
        seeds = max((len(self.schedule[s]) for s in samplers), default=0)
        self.rounds.append(RoundRecord(len(self.rounds) + 1, list(samplers), seeds, added_cells, images,
                                       round(seconds, 3), decision.end, list(decision.contenders),
                                       len(decision.open_pairs)))

    def next_round(self, decision: Decision) -> dict[str, list[int]] | None:
        """The new seeds of each contender for the next round, or None when the race is over (and why
        in `stopped`). Samplers out of the running are marked with the round they left."""
        number = len(self.rounds)
        for label in self.schedule:
            if label not in decision.contenders and label not in self.left:
                self.left[label] = number
        if decision.end == "none":
            self.stopped = "no_contenders"
            return None
        if decision.decided:
            self.stopped = "decided"
            return None
        if number >= MAX_ROUNDS:
            self.stopped = "rounds"
            return None
        contenders = [c for c in decision.contenders if c in self.schedule]
        have = min(len(self.schedule[c]) for c in contenders)
        add = next_seed_count(have) - have
        add = self._fit_to_budget(add, len(contenders))
        if add <= 0:
            self.stopped = "budget"
            return None
        return {c: [self.first_seed + len(self.schedule[c]) + i for i in range(add)] for c in contenders}

    def _fit_to_budget(self, add: int, contenders: int) -> int:
        cap = self.cap_images()
        if cap is not None:
            room = cap - self.spent_images
            return min(add, room // max(1, self.n * contenders))
        # a time budget: the next round's time estimated from what the cells so far cost per image
        per_image = self.spent_seconds / max(1, self.spent_images)
        room_s = float(self.budget.seconds or 0.0) - self.spent_seconds
        return min(add, int(room_s // max(1e-9, per_image * self.n * contenders)))

    def extend(self, new: Mapping[str, list[int]]) -> None:
        for label, seeds in new.items():
            self.schedule[label] = [*self.schedule[label], *seeds]

    def summary(self, decision: Decision | None) -> "RaceSection":
        """The results document's `race` section."""
        out: RaceSection = {"budget": self.budget.to_dict(), "stopped": self.stopped,
                               "rounds": [r.to_dict() for r in self.rounds], "left": dict(self.left),
                               "spent_images": self.spent_images, "spent_seconds": round(self.spent_seconds, 3)}
        if decision is not None and not decision.decided and decision.end != "none":
            seeds = decision.seeds_needed()
            out["seeds_needed"] = seeds
            if seeds is not None:
                have = {c: len(self.schedule.get(c, [])) for c in decision.contenders}
                out["images_needed"] = int(sum(max(0, seeds - k) for k in have.values()) * self.n)
        return out


__all__ = ["Budget", "DEFAULT_BUDGET_FACTOR", "Race", "RoundRecord", "next_seed_count"]
