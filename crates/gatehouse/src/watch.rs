//! `gatehouse watch`: a terminal UI listing the pending actions live (polling the daemon), with
//! keys to approve or deny the selected one under the same person-presence rules as `gatehouse
//! approve`, and a desktop notification (best effort) when a new action is paused.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Result, bail};
use gatehouse_client::{ActionQuery, Client, ClientError};
use gatehouse_protocol::{ActionView, Decision};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};

use crate::display;

/// How often the pending list is read again.
const REFRESH: Duration = Duration::from_secs(1);

/// What the screen shows: the pending actions (oldest first), the selection and a status line.
struct Screen {
    actions: Vec<ActionView>,
    table: TableState,
    status: String,
    /// Ids already seen, so only new pauses are notified.
    seen: HashSet<String>,
    first_load: bool,
}

/// Runs the UI until `q` (or Esc). `origin` is the daemon's URL, for the dashboard link shown
/// when a decision needs the person's presence.
pub async fn run(client: Client, origin: String) -> Result<std::process::ExitCode> {
    use std::io::IsTerminal as _;
    if !std::io::stdout().is_terminal() {
        bail!("gatehouse watch needs a terminal; for scripts use `gatehouse pending --json`");
    }
    let mut terminal = ratatui::try_init()?;
    let result = event_loop(&mut terminal, &client, &origin).await;
    ratatui::restore();
    result.map(|()| std::process::ExitCode::SUCCESS)
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    client: &Client,
    origin: &str,
) -> Result<()> {
    let mut screen = Screen {
        actions: Vec::new(),
        table: TableState::default(),
        status: "loading…".into(),
        seen: HashSet::new(),
        first_load: true,
    };
    let mut next_refresh = tokio::time::Instant::now();
    loop {
        if tokio::time::Instant::now() >= next_refresh {
            refresh(client, &mut screen).await;
            next_refresh = tokio::time::Instant::now() + REFRESH;
        }
        terminal.draw(|frame| draw(frame, &mut screen))?;
        // Key presses wait at most until the next refresh (crossterm's poll blocks this worker).
        let wait = next_refresh.saturating_duration_since(tokio::time::Instant::now());
        let pressed = tokio::task::block_in_place(|| -> std::io::Result<Option<KeyCode>> {
            if event::poll(wait)?
                && let Event::Key(key) = event::read()?
                && key.kind == KeyEventKind::Press
            {
                return Ok(Some(key.code));
            }
            Ok(None)
        })?;
        match pressed {
            Some(KeyCode::Char('q') | KeyCode::Esc) => return Ok(()),
            Some(KeyCode::Down | KeyCode::Char('j')) => screen.table.select_next(),
            Some(KeyCode::Up | KeyCode::Char('k')) => screen.table.select_previous(),
            Some(KeyCode::Char('a')) => {
                decide(client, origin, &mut screen, Decision::Approve).await;
                next_refresh = tokio::time::Instant::now();
            }
            Some(KeyCode::Char('d')) => {
                decide(client, origin, &mut screen, Decision::Deny).await;
                next_refresh = tokio::time::Instant::now();
            }
            Some(KeyCode::Char('r')) => next_refresh = tokio::time::Instant::now(),
            _ => {}
        }
    }
}

async fn refresh(client: &Client, screen: &mut Screen) {
    let query = ActionQuery {
        status: Some("pending".into()),
        limit: Some(500),
        before: None,
    };
    match client.actions(&query).await {
        Ok(mut list) => {
            list.actions.reverse();
            for action in &list.actions {
                if screen.seen.insert(action.action_id.clone()) && !screen.first_load {
                    notify(action);
                }
            }
            screen.first_load = false;
            let selected = screen
                .table
                .selected()
                .and_then(|i| screen.actions.get(i))
                .map(|a| a.action_id.clone());
            screen.actions = list.actions;
            // Keep the same action selected when others come and go.
            let index = selected
                .and_then(|id| screen.actions.iter().position(|a| a.action_id == id))
                .or((!screen.actions.is_empty()).then_some(0));
            screen.table.select(index);
            if screen.status == "loading…" || screen.status.starts_with("cannot read") {
                screen.status = String::new();
            }
        }
        Err(err) => screen.status = format!("cannot read the pending actions: {err}"),
    }
}

/// Approves or denies the selected action, naming it by the hash of what is shown. With person
/// presence on, the daemon refuses the token alone: the status line says where to confirm.
async fn decide(client: &Client, origin: &str, screen: &mut Screen, decision: Decision) {
    let Some(shown) = screen.table.selected().and_then(|i| screen.actions.get(i)) else {
        screen.status = "no action selected".into();
        return;
    };
    let id = shown.action_id.clone();
    let verb = match decision {
        Decision::Approve => "approved",
        Decision::Deny => "denied",
    };
    let hash = match crate::cli::shown_action_hash(shown) {
        Ok(hash) => hash,
        Err(err) => {
            screen.status = format!("{err:#}");
            return;
        }
    };
    screen.status = match client.decide(&id, decision, None, Some(&hash)).await {
        Ok(action) => format!(
            "{verb} {}: {}",
            display::terminal_safe(&action.action_id, 64),
            display::summary(&action)
        ),
        Err(ClientError::Api { code, .. }) if code == "presence_required" => format!(
            "{} needs your presence: confirm it in the dashboard {}/#action={}",
            display::terminal_safe(&id, 64),
            dashboard_origin(origin),
            display::terminal_safe(&id, 64)
        ),
        Err(err) => format!("not {verb}: {err}"),
    };
}

/// The dashboard on `localhost`, where the authenticator works (as `gatehouse approve` says).
fn dashboard_origin(origin: &str) -> String {
    origin
        .trim_end_matches('/')
        .replacen("://127.0.0.1:", "://localhost:", 1)
        .replacen("://[::1]:", "://localhost:", 1)
}

fn draw(frame: &mut ratatui::Frame<'_>, screen: &mut Screen) {
    let [list_area, status_area, keys_area] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let now = display::Style::plain();
    let rows = screen.actions.iter().map(|action| {
        let score = action
            .tier2
            .as_ref()
            .map_or_else(|| "-".to_owned(), |t| format!("{:.2}", t.score));
        Row::new([
            Cell::from(display::terminal_safe(&action.action_id, 30)),
            Cell::from(now.age_of(action)),
            Cell::from(display::terminal_safe(&action.tool, 20)),
            Cell::from(display::summary(action)),
            Cell::from(display::terminal_safe(
                action.rule_id.as_deref().unwrap_or("-"),
                30,
            )),
            Cell::from(display::terminal_safe(&action.reason, 60)),
            Cell::from(score),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(30),
            Constraint::Length(11),
            Constraint::Length(12),
            Constraint::Fill(3),
            Constraint::Length(16),
            Constraint::Fill(2),
            Constraint::Length(5),
        ],
    )
    .header(
        Row::new(["ID", "AGE", "TOOL", "COMMAND", "RULE", "REASON", "SCORE"])
            .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
    .block(Block::bordered().title(format!(
        " gatehouse watch: {} pending ",
        screen.actions.len()
    )));
    frame.render_stateful_widget(table, list_area, &mut screen.table);
    frame.render_widget(
        Paragraph::new(Line::from(screen.status.as_str())),
        status_area,
    );
    frame.render_widget(
        Paragraph::new("a approve  d deny  ↑/↓ select  r refresh  q quit")
            .style(Style::new().add_modifier(Modifier::DIM)),
        keys_area,
    );
}

/// A desktop notification of a new pause, where `notify-send` exists; never required, never
/// waited for. The text is escaped and kept free of notification markup.
fn notify(action: &ActionView) {
    let body = format!(
        "{} {}",
        display::terminal_safe(&action.tool, 40),
        display::summary(action)
    )
    .replace(['<', '>', '&'], " ");
    let _ = std::process::Command::new("notify-send")
        .args(["--app-name=gatehouse", "Gatehouse: an action waits for you"])
        .arg(body)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(|mut child| std::thread::spawn(move || child.wait()));
}
