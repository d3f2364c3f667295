//! The frame every HTML page shares: the document head with the style sheet, the
//! header bar and the main column. It knows nothing of callers or roles (the
//! pages put their links in the header), so an error page can be drawn without
//! them.
//!
//! The pages run no script and carry no `style` attribute: the one style sheet
//! below is all, and the [`content_security_policy`] allows it by its hash and
//! nothing else inline.

use axum::http::HeaderValue;
use base64::Engine as _;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use sha2::Digest as _;

const CSS: &str = r#"
:root { --fg:#1d2330; --muted:#667085; --line:#e4e7ec; --accent:#2c5cc5; --bg:#f7f8fa; --bad:#b42318; --ok:#067647; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--fg); background:var(--bg); }
header { background:#1d2330; color:#fff; padding:0 24px; display:flex; align-items:center; gap:24px; height:48px; }
header a { color:#cfd6e4; text-decoration:none; } header a:hover { color:#fff; }
header .brand { font-weight:700; color:#fff; font-size:16px; }
header .who { margin-left:auto; color:#9aa4b8; display:flex; gap:12px; align-items:center; }
header form { margin:0; } header button { background:none; border:1px solid #56627a; color:#cfd6e4; border-radius:4px; padding:2px 8px; cursor:pointer; }
main { max-width:1200px; margin:0 auto; padding:20px 24px 48px; }
h1 { font-size:20px; margin:8px 0 16px; word-break:break-word; } h2 { font-size:16px; margin:24px 0 8px; }
a { color:var(--accent); }
table { border-collapse:collapse; width:100%; background:#fff; border:1px solid var(--line); }
th, td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#f2f4f7; font-weight:600; font-size:12px; text-transform:uppercase; color:var(--muted); }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
code, .mono { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12.5px; }
.tabs { display:flex; gap:4px; border-bottom:1px solid var(--line); margin-bottom:12px; }
.tabs a { padding:6px 14px; text-decoration:none; color:var(--muted); border-bottom:2px solid transparent; }
.tabs a.on { color:var(--fg); border-color:var(--accent); font-weight:600; }
form.filters { display:flex; flex-wrap:wrap; gap:8px; align-items:end; margin-bottom:12px; }
label { display:flex; flex-direction:column; font-size:12px; color:var(--muted); gap:2px; }
input, select { font:inherit; padding:4px 6px; border:1px solid #cbd2dc; border-radius:4px; background:#fff; }
button, .button { font:inherit; padding:5px 12px; border:1px solid var(--accent); background:var(--accent); color:#fff; border-radius:4px; cursor:pointer; text-decoration:none; }
button.secondary { background:#fff; color:var(--accent); } button.danger { background:var(--bad); border-color:var(--bad); }
.actions { display:flex; gap:8px; flex-wrap:wrap; align-items:end; margin:12px 0; } .actions form { display:flex; gap:6px; align-items:end; margin:0; }
.grid { display:grid; grid-template-columns:repeat(auto-fit,minmax(280px,1fr)); gap:16px; }
.card { background:#fff; border:1px solid var(--line); border-radius:6px; padding:12px 16px; }
.card.narrow { max-width:420px; margin:48px auto; }
svg.chart { display:block; max-width:100%; height:auto; overflow:visible; } svg.chart .hit:hover { fill:#eef1f6; }
ul.legend { list-style:none; display:flex; flex-wrap:wrap; gap:4px 16px; padding:0; margin:6px 0; font-size:12px; color:var(--muted); } ul.legend li { display:flex; align-items:center; gap:4px; }
.trends { display:grid; grid-template-columns:repeat(auto-fit,minmax(340px,1fr)); gap:12px; margin-bottom:16px; } .trends h2, #issue-trend h2 { margin:0 0 6px; font-size:14px; }
.bar { display:grid; grid-template-columns:140px 1fr 48px; gap:8px; align-items:center; margin:4px 0; }
.bar .track { display:block; width:100%; height:10px; background:#eef1f6; border-radius:5px; } .bar .track rect { fill:var(--accent); }
.status { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; background:#eef1f6; }
.status.open { background:#fef0c7; } .status.regressed { background:#fee4e2; color:var(--bad); } .status.resolved { background:#dcfae6; color:var(--ok); }
.muted { color:var(--muted); } .error { color:var(--bad); } .notice { background:#dcfae6; border:1px solid #abefc6; padding:8px 12px; border-radius:4px; }
.pager { display:flex; gap:12px; margin:12px 0; }
dl.meta { display:grid; grid-template-columns:160px 1fr; gap:4px 12px; margin:0; } dl.meta dt { color:var(--muted); } dl.meta dd { margin:0; }
td.wrap { word-break:break-all; overflow-wrap:anywhere; }
table.fixed { table-layout:fixed; }
#audit th:nth-child(1) { width:11em; } #audit th:nth-child(2) { width:16em; } #audit th:nth-child(3) { width:12em; }
tr.crash td { background:#fff8f0; } details { margin:6px 0; background:#fff; border:1px solid var(--line); border-radius:4px; padding:6px 10px; }
summary { cursor:pointer; }
details.confirm { margin:0; padding:5px 10px; border-color:#fda29b; color:var(--bad); } details.confirm form { margin-top:6px; }
"#;

/// A whole page: `title`, the `header` bar's contents after the brand link, and `body`.
pub fn frame(title: &str, header: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Mayday" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    a.brand href="/" { "Mayday" }
                    (header)
                }
                main { (body) }
            }
        }
    }
}

/// The `Content-Security-Policy` of every triage response: only this server's
/// own resources, no script, no plugin, no framing, forms only to this server,
/// and of inline styles only the pages' style sheet (by its SHA-256).
pub fn content_security_policy() -> HeaderValue {
    policy("'none'")
}

/// The same policy for a page that runs one inline `script`, allowed by its
/// SHA-256 (and no other script). The page sets it on its response; the router's
/// layer leaves a policy already set in place.
pub fn content_security_policy_with_script(script: &str) -> HeaderValue {
    policy(&format!("'sha256-{}'", sha256_base64(script)))
}

fn sha256_base64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(text))
}

fn policy(script_src: &str) -> HeaderValue {
    let style = sha256_base64(CSS);
    let policy = format!(
        "default-src 'self'; script-src {script_src}; style-src 'sha256-{style}'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    HeaderValue::try_from(policy).expect("the policy is ASCII")
}
