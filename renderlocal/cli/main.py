"""Entry point of ``render-local``. Heavy modules are imported inside commands."""

from __future__ import annotations

import sys

import click

from renderlocal import __version__
from renderlocal.cli.output import emit, fail, output_option
from renderlocal.core.errors import RenderLocalError


class Context:
    """What every command needs: the options, and the control plane on demand."""

    def __init__(self, data_dir, blueprint):
        self.data_dir = data_dir
        self.blueprint = blueprint
        self._plane = None

    @property
    def plane(self):
        if self._plane is None:
            from renderlocal.core.control import ControlPlane

            self._plane = ControlPlane(self.data_dir, self.blueprint)
            self._plane.refresh()
            for warning in self._plane.warnings:
                click.echo(f"render-local: warning: {warning}", err=True)
        return self._plane


pass_ctx = click.make_pass_decorator(Context)


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", envvar="RENDER_LOCAL_HOME", type=click.Path(file_okay=False), help="State directory (default: RENDER_LOCAL_HOME, else the user data dir).")
@click.option("--blueprint", type=click.Path(dir_okay=False), help="render.yaml to load (default: ./render.yaml, else the bundled samples).")
@click.version_option(__version__, prog_name="render-local")
@click.pass_context
def cli(ctx, data_dir, blueprint):
    """render-local: Render's one-off jobs on your machine.

    With no command, opens the terminal app.
    """
    ctx.obj = Context(data_dir, blueprint)
    if ctx.invoked_subcommand is None:
        from renderlocal.tui.app import run_tui

        run_tui(ctx.obj.plane)


@cli.group()
def services():
    """Services from the blueprint."""


@services.command("list")
@output_option
@pass_ctx
def services_list(obj: Context, output):
    """List the blueprint's services."""
    items = obj.plane.list_services()
    rows = [
        {"id": s.id, "name": s.name, "type": s.type, "runtime": s.runtime, "plan": s.planId,
         "build": s.lastSuccessfulBuildId or "-"}
        for s in items
    ]
    emit(
        [{"service": s.to_render(), "cursor": s.id} for s in items], output,
        [("id", "id"), ("name", "name"), ("type", "type"), ("runtime", "runtime"), ("plan", "plan"), ("last build", "build")],
        rows,
    )


def main(argv=None) -> None:
    try:
        cli.main(args=argv, prog_name="render-local", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except RenderLocalError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        sys.exit(130)
