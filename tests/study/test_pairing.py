"""What makes two arms of one seed a pair: the trunk both start from."""

import torch

from mtl_heads.train import build_model, parse_args


def test_paired_runs_share_the_trunk_initialisation() -> None:
    args = parse_args(["--data", "synthetic", "--output", "-"])

    def trunk(label_maps: int, seed: int) -> dict[str, torch.Tensor]:
        args.label_maps, args.seed = label_maps, seed
        return build_model(args, 1, 7).backbone.state_dict()

    base, multi, other = trunk(0, 3), trunk(3, 3), trunk(0, 4)
    assert base.keys() == multi.keys()
    assert all(torch.equal(base[k], multi[k]) for k in base)
    assert not all(torch.equal(base[k], other[k]) for k in base if k.endswith("weight"))
