"""A log viewer for very long logs: a bounded window of lines, drawn lazily.

Only the rows on screen are rendered, so 5,000 lines (or a 1 MiB line) scroll
as smoothly as ten. Search highlights matches, can hide the other lines, and
``n``/``N`` walk the matches; timestamps (local time) and wrapping toggle.
"""

from __future__ import annotations

import math
import re

from rich.text import Text
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip

from renderlocal.core.logstore import LogLine, ts_to_datetime

_CONTROL = re.compile("[\u0000-\u0008\u000b-\u001f\u007f]")
MAX_LINE_CHARS = 10_000  # longer lines are shown cut, with the count of what is hidden


def compile_search(text: str) -> re.Pattern | None:
    """A case-insensitive regular expression; plain text if it is not one."""
    if not text:
        return None
    try:
        return re.compile(text, re.IGNORECASE)
    except re.error:
        return re.compile(re.escape(text), re.IGNORECASE)


def local_stamp(timestamp: str) -> str:
    try:
        moment = ts_to_datetime(timestamp).astimezone()
    except ValueError:
        return timestamp[:23]
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


class LogView(ScrollView, can_focus=True):
    """Log lines in a bounded window (the newest ``max_lines``)."""

    DEFAULT_CSS = """
    LogView {
        background: $surface;
        color: $text;
        overflow: auto auto;
        &:focus { background-tint: $foreground 4%; }
        & > .log-view--timestamp { color: $text-muted; }
        & > .log-view--stderr { color: $text-error; }
        & > .log-view--match { background: $warning 60%; color: $text; text-style: bold; }
        & > .log-view--current { background: $success; color: $background; text-style: bold underline; }
        & > .log-view--placeholder { color: $text-muted; text-style: italic; }
    }
    """
    COMPONENT_CLASSES = {
        "log-view--timestamp", "log-view--stderr", "log-view--match", "log-view--current",
        "log-view--placeholder",
    }
    BINDINGS = [
        Binding("up", "scroll_up", "Up", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("home", "scroll_home", "Top", show=False),
        Binding("end", "scroll_end", "Bottom (follow)", show=False),
    ]

    follow: var[bool] = var(True)
    timestamps: var[bool] = var(False)
    wrap: var[bool] = var(False)
    only_matches: var[bool] = var(False)
    search: var[str] = var("")

    class Changed(Message):
        """The view's state (lines, follow, search...) changed: refresh any status line."""

        def __init__(self, view: "LogView") -> None:
            super().__init__()
            self.view = view

    def __init__(self, max_lines: int = 5000, placeholder: str = "(no log lines yet)", **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_lines = max_lines
        self.placeholder = placeholder
        self._lines: list[LogLine] = []
        self.dropped = 0  # lines that left the window at the top
        self.older_not_loaded = False  # set by whoever feeds the view: the file holds older lines
        self._pattern: re.Pattern | None = None
        self._row_line: list[int] = []
        self._row_start: list[int] = []
        self._match_lines: list[int] = []
        self._current: LogLine | None = None
        self._generation = 0
        self._cache: LRUCache[tuple, Strip] = LRUCache(2048)
        self._text_cache: LRUCache[tuple, Text] = LRUCache(512)
        self._layout_width = 0
        self._programmatic = False

    # -- feeding ------------------------------------------------------------------
    @property
    def lines(self) -> list[LogLine]:
        return self._lines

    @property
    def line_count(self) -> int:
        return len(self._lines)

    @property
    def match_count(self) -> int:
        return len(self._match_lines)

    def append(self, lines: list[LogLine]) -> None:
        if not lines:
            return
        self._lines.extend(lines)
        excess = len(self._lines) - self.max_lines
        if excess > 0:
            del self._lines[:excess]
            self.dropped += excess
        self._relayout(keep_bottom=not self.follow)
        self.post_message(self.Changed(self))

    def clear(self) -> None:
        self._lines.clear()
        self.dropped = 0
        self.older_not_loaded = False
        self._current = None
        self._relayout()
        self.post_message(self.Changed(self))

    # -- state ----------------------------------------------------------------------
    def watch_follow(self, follow: bool) -> None:
        if follow:
            self._to_end()
        self.post_message(self.Changed(self))

    def watch_timestamps(self) -> None:
        self._relayout()
        self.post_message(self.Changed(self))

    def watch_wrap(self) -> None:
        self._relayout()
        if self.wrap:
            self.scroll_to(x=0, animate=False, immediate=True)
        self.post_message(self.Changed(self))

    def watch_only_matches(self) -> None:
        self._relayout()
        self.post_message(self.Changed(self))

    def watch_search(self, text: str) -> None:
        self._pattern = compile_search(text)
        self._current = None
        self._relayout()
        self.post_message(self.Changed(self))

    def on_resize(self) -> None:
        if self.wrap and self._wrap_width() != self._layout_width:
            self._relayout()

    # -- user scrolling turns follow off; the end turns it back on ---------------------
    def action_scroll_up(self) -> None:
        self.follow = False
        super().action_scroll_up()

    def action_page_up(self) -> None:
        self.follow = False
        super().action_page_up()

    def action_scroll_home(self) -> None:
        self.follow = False
        super().action_scroll_home()

    def action_scroll_end(self) -> None:
        self.follow = True

    def on_mouse_scroll_up(self) -> None:
        self.follow = False

    # -- matches ----------------------------------------------------------------------
    def next_match(self, backwards: bool = False) -> bool:
        """Move to the next (or previous) matching line; False if there is none."""
        if not self._match_lines:
            return False
        current = self._index_of(self._current)
        if current is None and self._row_line:
            # no match chosen yet: start from what is on screen (the bottom row going back, the top going on)
            height = self.scrollable_content_region.height or self.size.height or 1
            top_row = min(int(self.scroll_y), len(self._row_line) - 1)
            bottom_row = min(top_row + height - 1, len(self._row_line) - 1)
            current = self._row_line[bottom_row] + 1 if backwards else self._row_line[top_row] - 1
        elif current is None:
            current = len(self._lines) if backwards else -1
        if backwards:
            earlier = [i for i in self._match_lines if i < current]
            target = earlier[-1] if earlier else self._match_lines[-1]
        else:
            later = [i for i in self._match_lines if i > current]
            target = later[0] if later else self._match_lines[0]
        self._current = self._lines[target]
        self.follow = False
        self._bump()
        row = self._first_row_of(target)
        if row is not None:
            self.scroll_to(y=max(0, row - self.scrollable_content_region.height // 2), animate=False, immediate=True)
        self.refresh()
        self.post_message(self.Changed(self))
        return True

    def _index_of(self, line: LogLine | None) -> int | None:
        if line is None:
            return None
        for index in range(len(self._lines) - 1, -1, -1):
            if self._lines[index] is line:
                return index
        return None

    def _first_row_of(self, line_index: int) -> int | None:
        import bisect

        row = bisect.bisect_left(self._row_line, line_index)
        return row if row < len(self._row_line) and self._row_line[row] == line_index else None

    # -- layout -------------------------------------------------------------------------
    def _wrap_width(self) -> int:
        return max(1, self.scrollable_content_region.width or self.size.width or 80)

    def _prefix_len(self) -> int:
        return 24 if self.timestamps else 0

    def _display_len(self, line: LogLine) -> int:
        length = len(line.message)
        if length > MAX_LINE_CHARS:
            length = MAX_LINE_CHARS + 40
        return self._prefix_len() + length

    def _bump(self) -> None:
        self._generation += 1
        self._cache.clear()
        self._text_cache.clear()

    def _relayout(self, keep_bottom: bool = False) -> None:
        rows_before = len(self._row_line)
        y_before = self.scroll_y
        pattern = self._pattern
        lines = self._lines
        self._match_lines = [i for i, line in enumerate(lines) if pattern.search(line.message)] if pattern else []
        visible = self._match_lines if (pattern and self.only_matches) else range(len(lines))
        row_line: list[int] = []
        row_start: list[int] = []
        if self.wrap:
            width = self._layout_width = self._wrap_width()
            for index in visible:
                pieces = max(1, math.ceil(self._display_len(lines[index]) / width))
                row_line.extend([index] * pieces)
                row_start.extend(range(0, pieces * width, width))
            virtual_width = width
        else:
            row_line = list(visible)
            row_start = [0] * len(row_line)
            virtual_width = max((self._display_len(lines[i]) for i in row_line), default=0)
        self._row_line, self._row_start = row_line, row_start
        self._bump()
        self.virtual_size = Size(virtual_width, len(row_line))
        height = self.scrollable_content_region.height or self.size.height
        if self.follow:
            self._to_end()
        elif keep_bottom and rows_before:
            # lines left the top of the window: keep the same lines on screen
            shift = rows_before - len(row_line)
            if shift > 0 and y_before > 0:
                self.scroll_to(y=max(0, y_before - shift), animate=False, immediate=True)
        else:
            current = self._index_of(self._current)
            row = self._first_row_of(current) if current is not None else None
            if row is not None:
                self.scroll_to(y=max(0, row - height // 2), animate=False, immediate=True)
            elif y_before > max(0, len(row_line) - height):
                self.scroll_to(y=max(0, len(row_line) - height), animate=False, immediate=True)
        self.refresh()

    def _to_end(self) -> None:
        self.scroll_end(animate=False, immediate=True, x_axis=False)
        # the size may only be known after the next layout: follow again then
        self.call_after_refresh(self.scroll_end, animate=False, immediate=True, x_axis=False)

    # -- rendering ------------------------------------------------------------------------
    def _line_text(self, index: int) -> Text:
        key = (self._generation, index)
        cached = self._text_cache.get(key)
        if cached is not None:
            return cached
        line = self._lines[index]
        message = line.message
        hidden = len(message) - MAX_LINE_CHARS
        if hidden > 0:
            message = message[:MAX_LINE_CHARS]
        message = _CONTROL.sub("�", message.expandtabs())
        text = Text(no_wrap=True, end="")
        if self.timestamps:
            text.append(local_stamp(line.timestamp).ljust(23) + " ", self.get_component_rich_style("log-view--timestamp"))
        body = len(text)
        text.append(message, self.get_component_rich_style("log-view--stderr") if line.stream == "stderr" else None)
        if self._pattern is not None:
            style_name = "log-view--current" if line is self._current else "log-view--match"
            style = self.get_component_rich_style(style_name)
            for match in self._pattern.finditer(message):
                if match.end() > match.start():
                    text.stylize(style, body + match.start(), body + match.end())
        if hidden > 0:
            text.append(f" … [{hidden:,} more characters]", self.get_component_rich_style("log-view--placeholder"))
        self._text_cache[key] = text
        return text

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width or self.size.width
        row = scroll_y + y
        base = self.rich_style
        key = (self._generation, row, scroll_x, width)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if not self._row_line:
            if y == 0:
                text = Text(self.placeholder, style=self.get_component_rich_style("log-view--placeholder"), end="")
                strip = Strip(list(text.render(self.app.console)), text.cell_len).crop_extend(0, width, base)
            else:
                strip = Strip.blank(width, base)
            return strip.apply_style(base) if strip else strip
        if row >= len(self._row_line):
            return Strip.blank(width, base)
        text = self._line_text(self._row_line[row])
        if self.wrap:
            start = self._row_start[row]
            piece = text[start : start + width]
            strip = Strip(list(piece.render(self.app.console)), piece.cell_len).crop_extend(0, width, base)
        else:
            strip = Strip(list(text.render(self.app.console)), text.cell_len)
            strip = strip.crop_extend(scroll_x, scroll_x + width, base)
        strip = strip.apply_style(base)
        self._cache[key] = strip
        return strip

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._bump()

    # -- for tests and status lines ----------------------------------------------------------
    def visible_messages(self) -> list[str]:
        """The messages of the rows that would be shown, in order (one per line)."""
        seen, out = set(), []
        for index in self._row_line:
            if index not in seen:
                seen.add(index)
                out.append(self._lines[index].message)
        return out

    def status_text(self) -> str:
        parts = [f"follow {'on' if self.follow else 'off'}", f"timestamps {'on' if self.timestamps else 'off'}",
                 f"wrap {'on' if self.wrap else 'off'}"]
        if self.search:
            found = self.match_count
            where = ""
            current = self._index_of(self._current)
            if current is not None and current in self._match_lines:
                where = f", at {self._match_lines.index(current) + 1:,} of {found:,}"
            parts.append(f"search {self.search!r}: {found:,} matching line{'s' if found != 1 else ''}{where}"
                         + (" (only these shown)" if self.only_matches else ""))
        count = len(self._lines)
        if self.dropped or self.older_not_loaded:
            parts.append(f"the last {count:,} lines (older ones: render-local logs)")
        else:
            parts.append(f"{count:,} line{'s' if count != 1 else ''}")
        return " · ".join(parts)
