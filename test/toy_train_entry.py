"""``hvp train`` with the toy policy type registered: the script torchrun starts in
test_trainer.py (``python -m torch.distributed.run ... toy_train_entry.py CONFIG ...``)."""

import sys

import toy_policy  # noqa: F401  (registers the toy_test policy type)

from human_video_policy.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
