"""The observer effect (issue 24): what cannot be measured is refused before anything runs. (The recorded
`inv lab.observe` of 5.15.135: tests/recorded/test_observer.py.)"""

from __future__ import annotations

import pytest

from kernlab.config.lab import load_lab
from kernlab.errors import KernlabError
from kernlab.lab import observer
from kernlab.paths import LABS_DIR


def test_what_cannot_be_measured_is_refused() -> None:
    lab = load_lab(LABS_DIR / "zram-swap-5.15.yaml")
    with pytest.raises(KernlabError, match="at least 3 runs a side"):
        observer.observer_lab(lab, 2)
    untraced = lab.model_copy(update={"tracing": lab.tracing.model_copy(update={"enabled": False})})
    with pytest.raises(KernlabError, match="no observer effect to measure"):
        observer.observer_lab(untraced, 3)
    both = observer.observer_lab(lab, 3)
    assert both.sweep == {"tracing.enabled": [False, True]} and both.repeat == 3
