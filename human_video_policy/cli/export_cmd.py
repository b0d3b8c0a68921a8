"""``hvp export CHECKPOINT``: a training run -> an exported policy (ONNX + sidecar spec)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a trained policy to ONNX (a directory with policy.json for diffusion "
        "policies) and check it against PyTorch",
        description="Export the checkpoint of an `hvp train` run (a run folder: its "
        "checkpoints/last.pt, or a .pt file) so `policy_node` and `hvp sim-eval` run it with "
        "ONNX Runtime, no torch. Recorded observations from the run's own data are the parity "
        "inputs; the report (max abs error per denoiser step, encoder, whole chunk with fixed "
        "noise) is printed and stored in the spec. Needs torch (training extra). With "
        "--tensorrt the TensorRT FP16 engines are built and checked the same way "
        "(docs/policies.md).",
    )
    parser.add_argument("checkpoint", help="run folder or checkpoint .pt")
    parser.add_argument(
        "--out", default="", help="output (default: RUN/export for dit, RUN/policy.onnx for bc_mlp)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument(
        "--parity-samples", type=int, default=8, help="recorded observations for the parity check"
    )
    parser.add_argument(
        "--no-ema", action="store_true", help="export the raw weights, not the EMA ones"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the runtime's noise")
    parser.add_argument(
        "--tensorrt",
        action="store_true",
        help="also build the TensorRT FP16 engines (OUT/tensorrt, through ONNX Runtime's "
        "TensorRT provider, which the runtime then loads in seconds) and check them against "
        "PyTorch with the FP16 bars; needs an NVIDIA GPU with onnxruntime-gpu and TensorRT",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from human_video_policy.export.from_checkpoint import export_checkpoint, print_report
    from human_video_policy.validation import check_int_range

    check_int_range("--parity-samples", args.parity_samples, 1, 1024)
    check_int_range("--seed", args.seed, 0, 2**32 - 1)  # numpy's seed range
    report = export_checkpoint(
        args.checkpoint,
        args.out or None,
        overwrite=args.overwrite,
        parity_samples=args.parity_samples,
        use_ema=not args.no_ema,
        seed=args.seed,
        tensorrt=args.tensorrt,
    )
    print_report(report)
    return 0
