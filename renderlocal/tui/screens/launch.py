"""Launch one job, or one per argument, on a service's last successful build.

Every field is checked as it is typed, with the same rules the control plane
applies; the error shows under its field and nothing is created until all
fields are valid.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from decimal import Decimal

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static, TextArea

from renderlocal.core.errors import InvalidInput, RenderLocalError
from renderlocal.core.envvars import parse_env_overrides
from renderlocal.core.models import Job, Service
from renderlocal.core.plans import plan_for_job, plans_for
from renderlocal.tui.format import hourly, rate_note, usd
from renderlocal.tui.widgets.plan_picker import PlanPicker
from renderlocal.tui.widgets.keys_footer import KeysFooter

FAN_OUT_LIMIT = 500
# The form field that shows an error about an API field (``RenderLocalError.field``).
FIELD_OF = {"startCommand": "command", "planId": "plan", "envVars": "env"}


@dataclass
class LaunchRequest:
    """What the form says, once valid: one command per job."""

    commands: list[str]
    plan_id: str
    env: list[str]
    errors: dict[str, str] = field(default_factory=dict)
    compare: bool = False  # the command once on every plan of the family, one after another


def parse_env_lines(text: str) -> tuple[list[str], list[str]]:
    """KEY=VALUE lines (blank lines and # comments skipped) -> (pairs, errors naming the line)."""
    pairs, errors = [], []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            parse_env_overrides([line])
        except InvalidInput as exc:
            errors.append(f"line {number}: {exc}")
        else:
            pairs.append(line)
    return pairs, errors


def fan_out_args(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def commands_for(command: str, args: list[str]) -> list[str]:
    """Each argument appended to the command, shell-quoted (as ``jobs create --each-arg-from``)."""
    if not args:
        return [command]
    return [f"{command} {shlex.quote(arg)}" for arg in args]


def default_plan_id(service: Service) -> str:
    family = plans_for(service.type)
    return service.planId if any(p.id == service.planId for p in family) else family[0].id


class LaunchScreen(ModalScreen[list[Job] | dict | None]):
    """Dismissed with the jobs made, or with a plan comparison (a dict: its view), or None."""

    class Compared(Message):
        """The plan comparison the control plane started, or why it did not."""

        def __init__(self, comparison: dict | None, error: Exception | None) -> None:
            super().__init__()
            self.comparison = comparison
            self.error = error

    class Created(Message):
        """The jobs the control plane took, and the error that stopped the others (if any)."""

        def __init__(self, created: list[Job], error: Exception | None) -> None:
            super().__init__()
            self.created = created
            self.error = error

    BINDINGS = [
        Binding("ctrl+s", "launch", "Launch", priority=True),
        Binding("escape", "close", "Cancel"),
    ]

    def __init__(self, service: Service) -> None:
        super().__init__()
        self.service = service
        self.plans = plans_for(service.type)
        self.launching = False

    def compose(self) -> ComposeResult:
        service = self.service
        with VerticalScroll(id="launcher", classes="dialog"):
            title = Text()
            title.append("Launch a job on ", "bold")
            title.append(service.name, "bold #5fd7ff")
            title.append(f"  {service.type} · {service.runtime} · runs build "
                         f"{service.lastSuccessfulBuildId or '(none yet: build the service first)'}", "dim")
            yield Static(title, id="launch-title")
            yield Label("Start command", classes="field-label")
            yield Input(service.own_start_command or "", placeholder="e.g. python manage.py migrate", id="command")
            yield Static(id="command-error", classes="field-error")
            family = "cron job plans" if service.type == "cron" else "web, private service and worker plans"
            yield Label(f"Plan ({family}; the job gets this memory and CPU; ★ the service's own)",
                        classes="field-label")
            yield PlanPicker(self.plans, default_plan_id(service), service.planId, id="plan")
            yield Static(id="plan-error", classes="field-error")
            yield Label("Env overrides: KEY=VALUE, one per line (added to the service's env vars)",
                        classes="field-label")
            yield TextArea(id="env", soft_wrap=False, show_line_numbers=True, compact=True,
                           placeholder="e.g. LOG_LEVEL=debug")
            yield Static(id="env-error", classes="field-error")
            yield Label("Fan-out (optional): one job per line, the line appended to the command as one argument",
                        classes="field-label")
            yield TextArea(id="args", soft_wrap=False, show_line_numbers=True, compact=True,
                           placeholder="e.g. 2024-01-01 (empty: one job)")
            yield Static(id="args-info", classes="field-info")
            yield Checkbox("Run on every plan and compare duration, memory and cost (one after another)",
                           id="compare", compact=True)
            yield Static(id="estimate", classes="field-info")
            launch_error = Static(id="launch-error", classes="field-error")
            launch_error.display = False
            yield launch_error
            with Horizontal(classes="buttons"):
                yield Button("Launch (ctrl+s)", variant="success", id="launch")
                yield Button("Cancel (esc)", id="close")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.app.apply_blink(self)
        if self.service.planId not in {p.id for p in self.plans}:
            self.query_one("#plan-error", Static).update(
                Text(f"the service's own plan ({self.service.planId}) cannot run jobs: pick one of these", style="#ffaf00"))
        self.query_one("#command", Input).focus()
        self.validate()

    # -- validation ---------------------------------------------------------------------
    def validate(self) -> LaunchRequest:
        """Check every field; show each error next to its field; return what is valid."""
        command = self.query_one("#command", Input).value
        picker = self.query_one("#plan", PlanPicker)
        env_pairs, env_errors = parse_env_lines(self.query_one("#env", TextArea).text)
        args = fan_out_args(self.query_one("#args", TextArea).text)
        errors: dict[str, str] = {}
        if not command.strip():
            errors["command"] = "a start command is required" + (
                "" if self.service.own_start_command else f" ({self.service.name} has none of its own)")
        try:
            plan = plan_for_job(self.service.type, self.service.planId, picker.plan_id)
        except InvalidInput as exc:
            errors["plan"] = str(exc)
            plan = None
        if env_errors:
            errors["env"] = "\n".join(env_errors)
        if len(args) > FAN_OUT_LIMIT:
            errors["args"] = f"{len(args)} arguments: at most {FAN_OUT_LIMIT} jobs at once"
        compare = self.query_one("#compare", Checkbox).value
        if compare and args:
            errors["args"] = "a plan comparison runs one command: clear the fan-out or the comparison"
        self._show_error("command", errors.get("command"))
        if picker.forced or "plan" in errors or self.service.planId in {p.id for p in self.plans}:
            self._show_error("plan", errors.get("plan"))
        self._show_error("env", errors.get("env"))
        commands = commands_for(command.strip(), args)
        info = self.query_one("#args-info", Static)
        if "args" in errors:
            info.update(Text(errors["args"], style="bold red"))
        elif args:
            preview = Text(f"{len(args)} jobs, the first: " if len(args) > 1 else "1 job: ", style="dim")
            preview.append(commands[0])
            info.update(preview)
        else:
            info.update(Text("one job", style="dim"))
        estimate = Text()
        if compare:
            estimate.append(f"{len(self.plans)} jobs, one on each plan, one after another; ", "dim")
            estimate.append("the comparison shows which plan is cheapest for this command", "dim")
        elif plan is not None:
            rate = hourly(plan)
            estimate.append("Estimated cost ", "dim")
            estimate.append(f"{usd(rate, 6)}/hour", "bold")
            if len(commands) > 1:
                estimate.append(f" per job × {len(commands)} jobs = ", "dim")
                estimate.append(f"{usd(rate * Decimal(len(commands)), 6)}/hour", "bold")
            estimate.append(f" while running ({plan.name}: {rate_note(plan)})", "dim")
        self.query_one("#estimate", Static).update(estimate)
        self.query_one("#launch", Button).disabled = bool(errors) or self.launching
        return LaunchRequest(commands, plan.id if plan else picker.plan_id, env_pairs, errors, compare)

    def _show_error(self, name: str, message: str | None) -> None:
        widget = self.query_one(f"#{name}-error", Static)
        widget.update(Text(f"✘ {message}", style="bold red") if message else "")
        widget.display = bool(message)

    def on_input_changed(self, _event: Input.Changed) -> None:
        self.validate()

    def on_text_area_changed(self, _event: TextArea.Changed) -> None:
        self.validate()

    def on_plan_picker_changed(self, _event: PlanPicker.Changed) -> None:
        self.validate()

    def on_checkbox_changed(self, _event: Checkbox.Changed) -> None:
        self.validate()

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self.action_launch()

    # -- launching -----------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "launch":
            self.action_launch()
        else:
            self.action_close()

    def action_close(self) -> None:
        if not self.launching:
            self.dismiss(None)

    def action_launch(self) -> None:
        if self.launching:
            return
        request = self.validate()
        if request.errors:
            self.query_one("#launch-error", Static).update(
                Text("✘ fix the fields marked above; nothing was launched", style="bold red"))
            self.query_one("#launch-error", Static).display = True
            return
        self.launching = True
        self.query_one("#launch", Button).disabled = True
        self.query_one("#launch-error", Static).update(
            Text(f"launching {len(request.commands)} job{'s' if len(request.commands) > 1 else ''}…", style="italic"))
        self.query_one("#launch-error", Static).display = True
        if request.compare:
            self._compare(request)
        else:
            self._create(request)

    @work(thread=True, group="launch", exit_on_error=False)
    def _compare(self, request: LaunchRequest) -> None:
        try:
            comparison = self.app.plane.compare_plans(self.service.id, request.commands[0], None, True, request.env)
        except Exception as exc:  # the control plane said why: shown under the form
            self.post_message(self.Compared(None, exc))
        else:
            self.post_message(self.Compared(comparison, None))

    def on_launch_screen_compared(self, message: "LaunchScreen.Compared") -> None:
        message.stop()
        self.launching = False
        if message.error is None:
            self.dismiss(message.comparison)
            return
        self._show_launch_error(message.error)

    @work(thread=True, group="launch", exit_on_error=False)
    def _create(self, request: LaunchRequest) -> None:
        plane = self.app.plane
        service_id = self.service.id

        def one(command: str) -> Job:
            return plane.create_job(service_id, command, request.plan_id, request.env)

        created: list[Job] = []
        error: Exception | None = None
        for command in request.commands:  # one after another: the jobs are created, and listed, in launch order
            try:
                created.append(one(command))
            except Exception as exc:  # keep the ones that made it
                error = error or exc
        self.post_message(self.Created(created, error))

    def on_launch_screen_created(self, message: "LaunchScreen.Created") -> None:
        message.stop()
        created, error = message.created, message.error
        self.launching = False
        if error is None:
            self.dismiss(created)
            return
        self._show_launch_error(error, len(created))
        if created:
            self.dismiss(created)

    def _show_launch_error(self, error: Exception, created: int = 0) -> None:
        """Under its field when the control plane names one, else under the buttons."""
        text = str(error) if isinstance(error, RenderLocalError) else f"{type(error).__name__}: {error}"
        if created:
            text = f"{created} launched, the others failed: {text}"
        field = getattr(error, "field", None)
        target = FIELD_OF.get(field, "launch") if not created else "launch"
        if target == "launch":
            self.query_one("#launch-error", Static).update(Text(f"✘ {text}", style="bold red"))
            self.query_one("#launch-error", Static).display = True
        else:
            self.query_one("#launch-error", Static).display = False
            self._show_error(target, text)
        self.query_one("#launch", Button).disabled = False
