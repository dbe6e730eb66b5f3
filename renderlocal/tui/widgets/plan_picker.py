"""Pick the instance type of a job: only its service type's family is offered."""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from renderlocal.core.plans import Plan
from renderlocal.tui.format import cpu_text, hourly_text


def plan_prompt(plan: Plan, chosen: bool, service_plan_id: str) -> Text:
    text = Text()
    text.append("● " if chosen else "○ ", "bold" if chosen else "dim")
    text.append(f"{plan.name:<10}", "bold" if chosen else "")
    text.append(f"{plan.memory_text:>7}  {cpu_text(plan):>8}  ")
    text.append(f"{hourly_text(plan):>11}", "bold")
    text.append(f"  {plan.price_text:<15}", "dim")
    text.append(f"{plan.id}", "dim")
    if plan.id == service_plan_id:
        text.append(" ★", "bold")
    return text


class PlanPicker(OptionList):
    """One line per plan: memory, CPU and price per hour; the highlight is the choice."""

    DEFAULT_CSS = """
    PlanPicker { height: auto; max-height: 8; }
    """

    class Changed(Message):
        def __init__(self, picker: "PlanPicker", plan: Plan) -> None:
            super().__init__()
            self.picker = picker
            self.plan = plan

    def __init__(self, plans: list[Plan], selected_id: str, service_plan_id: str, **kwargs) -> None:
        self.plans = list(plans)
        self.service_plan_id = service_plan_id
        self._chosen = selected_id if any(p.id == selected_id for p in self.plans) else self.plans[0].id
        self.forced: str | None = None  # a plan id set from outside the family (validated by the launcher)
        super().__init__(*[Option(plan_prompt(p, p.id == self._chosen, service_plan_id), id=p.id) for p in self.plans],
                         **kwargs)

    def on_mount(self) -> None:
        self.highlighted = self._index(self._chosen)

    def _index(self, plan_id: str) -> int:
        return next(i for i, p in enumerate(self.plans) if p.id == plan_id)

    @property
    def plan_id(self) -> str:
        return self.forced or self.plan.id

    @property
    def plan(self) -> Plan:
        """The highlighted plan (read from the highlight itself: a launch key may beat the message)."""
        if self.highlighted is not None and 0 <= self.highlighted < len(self.plans):
            return self.plans[self.highlighted]
        return self.plans[self._index(self._chosen)]

    def choose(self, plan_id: str) -> None:
        """Select a plan by id; an id outside the offered family is kept for validation to refuse."""
        if any(p.id == plan_id for p in self.plans):
            self.forced = None
            self.highlighted = self._index(plan_id)
        else:
            self.forced = plan_id
            self.post_message(self.Changed(self, self.plan))

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option_id is None or event.option_id == self._chosen and self.forced is None:
            return
        previous, self._chosen = self._chosen, event.option_id
        self.forced = None
        for plan_id in {previous, self._chosen}:
            plan = self.plans[self._index(plan_id)]
            self.replace_option_prompt(plan_id, plan_prompt(plan, plan_id == self._chosen, self.service_plan_id))
        self.post_message(self.Changed(self, self.plan))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()  # Enter picks the highlighted plan, already chosen
