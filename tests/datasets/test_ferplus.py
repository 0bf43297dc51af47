"""FER+ label rules on hand-made vote rows, one per branch of each mode.

Columns: neutral happiness surprise sadness anger disgust fear contempt unknown NF.
The expected outcomes follow FER+'s reference code (microsoft/FERPlus ``src/ferplus.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

from mtl_heads.datasets import (
    FERPLUS_MODES,
    ferplus_drop_reasons,
    ferplus_labels,
    ferplus_to_fer2013,
)


def _row(**votes: int) -> list[int]:
    columns = ["neu", "hap", "sur", "sad", "ang", "dis", "fea", "con", "unk", "nf"]
    unknown = set(votes) - set(columns)
    assert not unknown, unknown  # a typo in this test file, not user input
    return [votes.get(c, 0) for c in columns]


def _check(rows: list[tuple[list[int], object]], mode: str) -> None:
    """Each row's expected outcome: a reason string (dropped) or its kept votes per class."""
    votes = np.array([r for r, _ in rows])
    labels = ferplus_labels(votes, mode)
    reasons = ferplus_drop_reasons(votes, mode)
    for i, (row, expected) in enumerate(rows):
        if isinstance(expected, str):
            assert reasons[i] == expected, (row, reasons[i])
            if mode == "majority":
                assert labels[i] == -100
            else:
                assert (labels[i] == 0).all(), (row, labels[i])
            continue
        assert reasons[i] == "", (row, reasons[i])
        kept = np.array(expected, dtype=np.float64)
        if mode == "majority":
            assert labels[i] == kept.argmax(), (row, labels[i])
        elif mode == "multi_target":
            np.testing.assert_array_equal(labels[i], kept > 0, err_msg=str(row))
        else:
            np.testing.assert_allclose(labels[i], kept / kept.sum(), rtol=1e-6, err_msg=str(row))


def test_majority() -> None:
    rows = [
        # 5 of 10 is not a majority, but the five single votes are outliers: 5 of 5 is.
        (_row(neu=1, hap=5, sur=1, sad=1, ang=1, dis=1), _row(hap=5)[:8]),
        (_row(hap=10), _row(hap=10)[:8]),
        (_row(neu=5, hap=5), "no agreement"),  # exactly half: not more than half
        (_row(neu=4, hap=4, nf=2), "no agreement"),
        (_row(neu=1, hap=1, sur=1, sad=1, ang=1, dis=1, fea=1, con=1, unk=1, nf=1), "no agreement"),
        (_row(), "no agreement"),  # no votes at all
        (_row(con=6, unk=4), _row(con=6)[:8]),  # contempt is one of the 8 classes
        (_row(hap=2, unk=7, nf=1), "unknown"),
        (_row(hap=2, nf=8), "NF"),
        (_row(hap=5, nf=4), _row(hap=5)[:8]),  # the row with 9 votes: 5 > 4.5
        (_row(hap=4, sad=3, nf=2), "no agreement"),  # 9 votes: 4 < 4.5
    ]
    _check(rows, "majority")


@pytest.mark.parametrize("mode", ["crossentropy", "probability"])
def test_crossentropy_and_probability(mode: str) -> None:
    rows = [
        (_row(neu=7, hap=1, sur=1, sad=1), _row(neu=7)[:8]),  # outliers removed: 7 of 7
        (_row(neu=8, hap=2), _row(neu=8)[:8]),  # 8 of 10 covers 75 % alone
        (_row(hap=6, sur=4), _row(hap=6, sur=4)[:8]),
        (_row(neu=5, hap=3, sur=2), _row(neu=5, hap=3)[:8]),  # 8 >= 7.5: stop before surprise
        (_row(neu=4, hap=2, sur=2, unk=2), _row(neu=4, hap=2, sur=2)[:8]),  # unknown ties: left out
        (_row(neu=4, hap=2, sur=2, sad=2), "no agreement"),  # a tie makes four emotions
        (_row(neu=4, unk=3, nf=3), "no agreement"),  # unknown reached: 4 of 10 integrated
        (_row(neu=4, unk=4, nf=2), "no agreement"),  # neutral and unknown tie at the top
        (_row(hap=2, unk=6, nf=2), "unknown"),  # unknown first, alone, 6 of 10
        (_row(neu=2, nf=8), "NF"),
        (_row(neu=2, nf=4, unk=3), "no agreement"),  # NF first but only 4 of 9
        (_row(), "no agreement"),
        (_row(neu=3, hap=3, sur=3), _row(neu=3, hap=3, sur=3)[:8]),  # 9 votes, three-way tie
    ]
    _check(rows, mode)


def test_multi_target() -> None:
    rows = [
        (_row(neu=5, hap=3, sur=2), _row(neu=5, hap=3)[:8]),  # 30 % of 10 is 3
        (_row(neu=4, hap=2, sur=2, sad=2), "no agreement"),  # only 4 of 10 above 30 %
        (_row(neu=6, unk=4), _row(neu=6)[:8]),  # unknown above 30 % but neutral wins
        (_row(neu=5, unk=5), _row(neu=5)[:8]),  # a tie goes to the first column
        (_row(hap=3, nf=7), "NF"),
        (_row(hap=3, unk=7), "unknown"),
        (_row(neu=7, hap=1, sur=1, sad=1), _row(neu=7)[:8]),  # single votes removed first
        (_row(neu=3, hap=3, unk=3), _row(neu=3, hap=3)[:8]),  # 9 votes: 30 % is 2.7
        (_row(), "no agreement"),
    ]
    _check(rows, "multi_target")
    # multi-target labels mark the emotions, they are not a distribution
    assert ferplus_labels(np.array([_row(neu=5, hap=3, sur=2)]), "multi_target").sum() == 2


def test_modes_agree_on_clear_images() -> None:
    votes = np.array([_row(hap=10), _row(sad=9, ang=1), _row(nf=10)])
    for mode in FERPLUS_MODES:
        assert ferplus_drop_reasons(votes, mode).tolist() == ["", "", "NF"]
    assert ferplus_labels(votes).tolist() == [1, 3, -100]


def test_bad_votes_are_named() -> None:
    with pytest.raises(ValueError, match=r"must be \(N, 10\).*got shape \(2, 9\)"):
        ferplus_labels(np.zeros((2, 9), dtype=np.int64))
    votes = np.array([_row(hap=10), _row(hap=10)])
    votes[1, 6] = -1
    with pytest.raises(ValueError, match=r"row 1 holds a negative count"):
        ferplus_labels(votes)
    with pytest.raises(TypeError, match="integer counts"):
        ferplus_labels(votes.astype(np.float32))
    with pytest.raises(ValueError, match=r"ferplus_mode must be one of .*got 'soft'"):
        ferplus_labels(votes.clip(0), "soft")


def test_ferplus_to_fer2013() -> None:
    # neutral happiness surprise sadness anger disgust fear contempt, then "missing"
    labels = np.array([0, 1, 2, 3, 4, 5, 6, 7, -100])
    assert ferplus_to_fer2013(labels).tolist() == [6, 3, 5, 4, 0, 1, 2, -100, -100]
    assert ferplus_to_fer2013(labels.reshape(3, 3)).shape == (3, 3)
    with pytest.raises(ValueError, match=r"labels\[1\] = 8 is not a FER\+ class id"):
        ferplus_to_fer2013(np.array([0, 8]))
