"""Commands about backbones: backbones, layers, imagenet."""

from __future__ import annotations

import json

import click

from bottleneck.cli._options import backend_option


@click.command()
def backbones() -> None:
    """List the registered backbones with their sizes and output dims."""
    from bottleneck.backbones import BACKBONES

    click.echo(f"{'name':<20}{'dims':>6}{'default':>9}{'min':>5}  description")
    for backbone in BACKBONES.values():
        click.echo(f"{backbone.name:<20}{backbone.dims:>6}{backbone.default_size:>9}"
                   f"{backbone.min_size:>5}  {backbone.description}")


@click.command()
@click.argument("backbone")
@click.option("--image-size", type=int, help="Input size (default: the backbone's).")
@backend_option
def layers(backbone: str, image_size: int | None) -> None:
    """List BACKBONE's layer names and output shapes (for --layer)."""
    from bottleneck.backbones import get_backbone

    spec = get_backbone(backbone)
    size = image_size or spec.default_size
    spec.check_size(size)
    model = spec.load(spec.resolve_weights("none"), size)
    for layer in model.layers:
        shape = "×".join(str(d) for d in layer.output.shape[1:])
        click.echo(f"{layer.name:<40}{shape}")


@click.command("imagenet")
@click.argument("inputs", metavar="IMAGE_OR_FOLDER...", nargs=-1, required=True)
@click.option("--backbone", "-b", default="efficientnet_lite0", show_default=True,
              help="A backbone whose ImageNet weights you have (efficientnet_lite0: offline).")
@click.option("--weights", default="imagenet", show_default=True,
              help="imagenet (Keras' download; efficientnet_lite0: offline) or a weights file "
                   "WITH the classifier top (Keras' *_tf_kernels.h5, not *_notop.h5).")
@click.option("--top", type=int, default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@backend_option
def imagenet(inputs: tuple[str, ...], backbone: str, weights: str, top: int,
             as_json: bool) -> None:
    """Name the ImageNet classes the backbone itself sees in each image (a sanity check)."""
    from bottleneck.models.imagenet import classify_imagenet
    from bottleneck.models.predict import require_some

    results = classify_imagenet(inputs, backbone=backbone, weights=weights, top=top)
    if as_json:
        click.echo(json.dumps(results, indent=2))
    for result in [] if as_json else results:
        if "error" in result:
            click.echo(f"{result['path']}: cannot classify: {result['error']}", err=True)
        else:
            ranked = ", ".join(f"{e['class']} {e['probability']:.3f}" for e in result["top"])
            click.echo(f"{result['path']}\t{ranked}")
    require_some(results)
