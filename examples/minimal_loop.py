"""The label-map head and loss in a plain PyTorch loop: the lines to add to your own.

    python examples/minimal_loop.py

A DataLoader of data set items ({"image", "label", "landmarks", "landmarks_valid"}) feeds the
loss as it is: the loop only adds the batch's "label_maps", drawn from the augmented landmarks.
examples/train.py is the same loop with the paper's options, checkpoints and evaluation.
"""

import torch
from torch.utils.data import DataLoader

import mtl_heads
from mtl_heads.augmentation import center_crop, paper_augmentation, zoom_of
from mtl_heads.datasets import SyntheticFaces
from mtl_heads.landmarks import landmarks_to_label_maps


def main(epochs: int = 3) -> float:
    torch.manual_seed(0)
    train, test = SyntheticFaces(1024, seed=0), SyntheticFaces(256, seed=1)
    loader = DataLoader(train, batch_size=64, shuffle=True, drop_last=True)
    pre = mtl_heads.PaperPreprocessing().fit(torch.from_numpy(train.images)[:, None])
    aug = paper_augmentation(rotation=0.0, zoom=1.0)  # Kornia: mirror + shift, crop 48 -> 42
    model = mtl_heads.create_model("fer_convnet", num_classes=7, num_label_maps=3)  # + the head
    loss_fn = mtl_heads.MaskedMultiTaskLoss(lam=1.0)  # CE + lambda * masked label-map BCE
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for epoch in range(epochs):
        model.train(), pre.train()
        for batch in loader:
            x = pre.standardize(batch["image"].float())
            params = aug.forward_parameters(x.shape)  # drawn first: the maps need each zoom
            x, landmarks = aug(x, batch["landmarks"], data_keys=["input", "keypoints"],
                               params=params)  # mirrored faces keep left points image-left
            batch["label_maps"] = landmarks_to_label_maps(  # the auxiliary targets
                landmarks, 42, valid=batch["landmarks_valid"], thickness_scale=zoom_of(params))
            loss = loss_fn(model(pre.normalize_batch(x)), batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        classifier = model.deploy().eval()  # the plain timm model: the head costs nothing here
        pre.eval()
        with torch.no_grad():
            x = center_crop(pre.standardize(torch.from_numpy(test.images)[:, None].float()), 42)
            acc = (classifier(pre.normalize_batch(x)).argmax(1).numpy() == test.labels).mean()
        print(f"epoch {epoch + 1}: loss {loss.item():.3f}, test accuracy {acc:.3f}")
    return float(acc)


if __name__ == "__main__":
    main()
