//! Message bodies as Markdown: parsed with pulldown-cmark into a small tree of the few things a
//! chat shows (emphasis, code, quotes, lists, links), then built as a Leptos view. Never raw
//! HTML: raw HTML in a body stays text, and only `http:`, `https:` and `mailto:` links become
//! links. Bare URLs in text become links too ([`find_urls`]).

use leptos::prelude::*;
use pulldown_cmark::{Event, LinkType, Options, Parser, Tag};

/// Quotes and lists nested deeper than this are flattened into their parent: a hostile body of
/// `>>>>>>…` stays a few boxes deep instead of a staircase off the screen.
const MAX_NESTING: usize = 5;
/// Any element nested deeper than this (emphasis inside emphasis inside a link…) is flattened:
/// building and rendering the tree recurse, and a 4000-character body must not blow the stack.
const MAX_DEPTH: usize = 24;

/// What a message body shows, after every unsafe part was turned into text.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Text(String),
    /// A link whose target is `http(s):` or `mailto:` (nothing else ever becomes one).
    Link {
        href: String,
        children: Vec<Node>,
    },
    Code(String),
    Emph(Vec<Node>),
    Strong(Vec<Node>),
    Strike(Vec<Node>),
    Para(Vec<Node>),
    CodeBlock(String),
    Quote(Vec<Node>),
    /// `start` is the first number of an ordered list; `None` for bullets. Children are `Item`s.
    List {
        start: Option<u64>,
        children: Vec<Node>,
    },
    Item(Vec<Node>),
}

/// One open element while the parser's events are walked.
#[derive(Debug)]
enum Frame {
    Root,
    Para,
    Quote,
    List(Option<u64>),
    Item,
    Emph,
    Strong,
    Strike,
    /// `None`: a link to something we do not open (shown as its text).
    Link(Option<String>),
    CodeBlock,
    /// Anything we do not draw as itself (a heading, an image, a table, an HTML block, or an
    /// element past the depth caps): its contents go to its parent as they are.
    Transparent,
}

struct Open {
    frame: Frame,
    children: Vec<Node>,
    /// Text not yet split into plain runs and bare URLs (the parser cuts text at every `_` or
    /// `[`, so a URL arrives in pieces).
    text: String,
}

/// A link target we are willing to open: `http:`, `https:` or `mailto:`, nothing else.
pub fn safe_href(url: &str) -> Option<String> {
    let url = url.trim();
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let ok = (lower.starts_with("http://") && url.len() > 7)
        || (lower.starts_with("https://") && url.len() > 8)
        || (lower.starts_with("mailto:") && url.len() > 7);
    // Control characters and spaces are dropped by browsers inside URLs; none belongs here.
    (ok && !url.chars().any(|c| c.is_control() || c == ' ')).then(|| url.to_string())
}

/// The bare URLs in `text` (`http://…`, `https://…`, `www.…`): their byte ranges and where they
/// lead. Trailing punctuation and an unbalanced `)` stay outside, as people expect in prose.
pub fn find_urls(text: &str) -> Vec<(std::ops::Range<usize>, String)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0
            || !text[..i]
                .chars()
                .next_back()
                .is_some_and(char::is_alphanumeric);
        let rest = &text[i..];
        let prefix = ["https://", "http://", "www."].into_iter().find(|p| {
            rest.get(..p.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(p))
        });
        let (Some(prefix), true) = (prefix, starts_word) else {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let len = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '`'))
            .unwrap_or(rest.len());
        let mut url = &rest[..len];
        loop {
            let trimmed = url.trim_end_matches(['.', ',', ':', ';', '!', '?', '\'', '*', '_', '~']);
            let trimmed = if trimmed.ends_with(')')
                && trimmed.matches(')').count() > trimmed.matches('(').count()
            {
                &trimmed[..trimmed.len() - 1]
            } else {
                trimmed
            };
            if trimmed.len() == url.len() {
                break;
            }
            url = trimmed;
        }
        // Something must follow the scheme: a host starts with a letter or digit.
        let host_ok = url
            .get(prefix.len()..)
            .and_then(|h| h.chars().next())
            .is_some_and(char::is_alphanumeric);
        if host_ok {
            let href = if prefix.eq_ignore_ascii_case("www.") {
                format!("https://{url}")
            } else {
                url.to_string()
            };
            out.push((i..i + url.len(), href));
            i += url.len();
        } else {
            i += prefix.len();
        }
    }
    out
}

/// Plain text as text and link nodes.
fn linkify(text: &str, into: &mut Vec<Node>) {
    let mut at = 0;
    for (range, href) in find_urls(text) {
        if range.start > at {
            push_text(into, &text[at..range.start]);
        }
        into.push(Node::Link {
            href,
            children: vec![Node::Text(text[range.clone()].to_string())],
        });
        at = range.end;
    }
    if at < text.len() {
        push_text(into, &text[at..]);
    }
}

fn push_text(into: &mut Vec<Node>, text: &str) {
    match into.last_mut() {
        Some(Node::Text(t)) => t.push_str(text),
        _ => into.push(Node::Text(text.to_string())),
    }
}

impl Open {
    fn new(frame: Frame) -> Open {
        Open {
            frame,
            children: Vec::new(),
            text: String::new(),
        }
    }
}

/// Parses a body into the nodes it shows.
pub fn parse(body: &str) -> Vec<Node> {
    let mut stack = vec![Open::new(Frame::Root)];
    let flush = |stack: &mut Vec<Open>| {
        let in_link = stack
            .iter()
            .any(|o| matches!(o.frame, Frame::Link(_) | Frame::CodeBlock));
        if let Some(top) = stack.last_mut() {
            if top.text.is_empty() {
                return;
            }
            let text = std::mem::take(&mut top.text);
            if in_link {
                push_text(&mut top.children, &text);
            } else {
                linkify(&text, &mut top.children);
            }
        }
    };
    for event in Parser::new_ext(body, Options::ENABLE_STRIKETHROUGH) {
        match event {
            Event::Text(t) | Event::Html(t) | Event::InlineHtml(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t);
                }
            }
            Event::Code(c) => {
                flush(&mut stack);
                if let Some(top) = stack.last_mut() {
                    top.children.push(Node::Code(c.to_string()));
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                // A newline someone typed is a new line in a chat, not a space (paragraphs keep
                // their newlines on screen), and stays one in the text a reader copies.
                if let Some(top) = stack.last_mut() {
                    top.text.push('\n');
                }
            }
            Event::Rule => {
                flush(&mut stack);
                if let Some(top) = stack.last_mut() {
                    top.children
                        .push(Node::Para(vec![Node::Text("———".into())]));
                }
            }
            Event::Start(tag) => {
                flush(&mut stack);
                let nesting = stack
                    .iter()
                    .filter(|o| matches!(o.frame, Frame::Quote | Frame::List(_)))
                    .count();
                let parent_is_list = stack
                    .last()
                    .is_some_and(|o| matches!(o.frame, Frame::List(_)));
                let frame = if stack.len() >= MAX_DEPTH {
                    Frame::Transparent
                } else {
                    match tag {
                        Tag::Paragraph | Tag::Heading { .. } | Tag::HtmlBlock => Frame::Para,
                        Tag::BlockQuote(_) if nesting < MAX_NESTING => Frame::Quote,
                        Tag::List(start) if nesting < MAX_NESTING => Frame::List(start),
                        Tag::Item if parent_is_list => Frame::Item,
                        Tag::CodeBlock(_) => Frame::CodeBlock,
                        Tag::Emphasis => Frame::Emph,
                        Tag::Strong => Frame::Strong,
                        Tag::Strikethrough => Frame::Strike,
                        Tag::Link {
                            link_type,
                            dest_url,
                            ..
                        } => {
                            let url = if link_type == LinkType::Email {
                                format!("mailto:{dest_url}")
                            } else {
                                dest_url.to_string()
                            };
                            Frame::Link(safe_href(&url))
                        }
                        _ => Frame::Transparent,
                    }
                };
                stack.push(Open::new(frame));
            }
            Event::End(_) => {
                flush(&mut stack);
                if stack.len() < 2 {
                    continue; // unbalanced: never from pulldown-cmark, harmless if so
                }
                let Some(Open {
                    frame,
                    mut children,
                    ..
                }) = stack.pop()
                else {
                    continue;
                };
                // Ok: the node this element makes; Err: its contents, for the parent as they are.
                let node = match frame {
                    Frame::Para => {
                        // An HTML block's text ends with its line break.
                        if let Some(Node::Text(t)) = children.last_mut() {
                            let kept = t.trim_end_matches('\n').len();
                            t.truncate(kept);
                        }
                        Ok(Node::Para(children))
                    }
                    Frame::Quote => Ok(Node::Quote(children)),
                    Frame::List(start) => Ok(Node::List { start, children }),
                    Frame::Item => Ok(Node::Item(children)),
                    Frame::Emph => Ok(Node::Emph(children)),
                    Frame::Strong => Ok(Node::Strong(children)),
                    Frame::Strike => Ok(Node::Strike(children)),
                    Frame::Link(Some(href)) => Ok(Node::Link { href, children }),
                    Frame::CodeBlock => {
                        let text: String = children
                            .iter()
                            .map(|n| match n {
                                Node::Text(t) => t.as_str(),
                                _ => "",
                            })
                            .collect();
                        Ok(Node::CodeBlock(
                            text.strip_suffix('\n').unwrap_or(&text).to_string(),
                        ))
                    }
                    Frame::Link(None) | Frame::Transparent | Frame::Root => Err(children),
                };
                if let Some(parent) = stack.last_mut() {
                    match node {
                        Ok(n) => parent.children.push(n),
                        Err(children) => {
                            for child in children {
                                match child {
                                    Node::Text(t) => push_text(&mut parent.children, &t),
                                    other => parent.children.push(other),
                                }
                            }
                        }
                    }
                }
            }
            // Not enabled (footnotes, tasks, math): nothing to show.
            _ => {}
        }
    }
    flush(&mut stack);
    stack.truncate(1);
    stack.pop().map(|o| o.children).unwrap_or_default()
}

/// A body as text only (replies' excerpts, notifications): what a reader would see, flattened.
pub fn plain_text(body: &str) -> String {
    fn walk(nodes: &[Node], out: &mut String) {
        for n in nodes {
            match n {
                Node::Text(t) | Node::Code(t) | Node::CodeBlock(t) => out.push_str(t),
                Node::Link { children, .. }
                | Node::Emph(children)
                | Node::Strong(children)
                | Node::Strike(children)
                | Node::Quote(children)
                | Node::List { children, .. } => walk(children, out),
                Node::Para(children) | Node::Item(children) => {
                    walk(children, out);
                    out.push(' ');
                }
            }
        }
    }
    let mut out = String::new();
    walk(&parse(body), &mut out);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A message body as a view.
pub fn render(body: &str) -> AnyView {
    nodes_view(parse(body)).into_any()
}

fn nodes_view(nodes: Vec<Node>) -> Vec<AnyView> {
    nodes.into_iter().map(node_view).collect()
}

fn node_view(node: Node) -> AnyView {
    match node {
        Node::Text(t) => t.into_any(),
        Node::Code(c) => view! { <code>{c}</code> }.into_any(),
        Node::Emph(c) => view! { <em>{nodes_view(c)}</em> }.into_any(),
        Node::Strong(c) => view! { <strong>{nodes_view(c)}</strong> }.into_any(),
        Node::Strike(c) => view! { <del>{nodes_view(c)}</del> }.into_any(),
        Node::Link { href, children } => {
            // mailto: opens the mail program; web links open beside the chat.
            let web = !href.starts_with("mailto:");
            view! {
                <a href=href rel="noopener noreferrer" target=web.then_some("_blank")>
                    {nodes_view(children)}
                </a>
            }
            .into_any()
        }
        Node::Para(c) => view! { <p>{nodes_view(c)}</p> }.into_any(),
        Node::CodeBlock(t) => {
            view! { <pre class="code" tabindex="0"><code>{t}</code></pre> }.into_any()
        }
        Node::Quote(c) => view! { <blockquote>{nodes_view(c)}</blockquote> }.into_any(),
        Node::List {
            start: Some(n),
            children,
        } => view! { <ol start=n>{nodes_view(children)}</ol> }.into_any(),
        Node::List {
            start: None,
            children,
        } => view! { <ul>{nodes_view(children)}</ul> }.into_any(),
        Node::Item(c) => view! { <li>{nodes_view(c)}</li> }.into_any(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(nodes: &[Node], out: &mut Vec<String>) {
        for n in nodes {
            match n {
                Node::Link { href, children } => {
                    out.push(href.clone());
                    links(children, out);
                }
                Node::Emph(c)
                | Node::Strong(c)
                | Node::Strike(c)
                | Node::Para(c)
                | Node::Quote(c)
                | Node::Item(c)
                | Node::List { children: c, .. } => links(c, out),
                _ => {}
            }
        }
    }

    fn hrefs(body: &str) -> Vec<String> {
        let mut out = Vec::new();
        links(&parse(body), &mut out);
        out
    }

    fn depth(nodes: &[Node]) -> usize {
        nodes
            .iter()
            .map(|n| match n {
                Node::Quote(c) | Node::List { children: c, .. } => 1 + depth(c),
                Node::Emph(c)
                | Node::Strong(c)
                | Node::Strike(c)
                | Node::Para(c)
                | Node::Item(c)
                | Node::Link { children: c, .. } => depth(c),
                _ => 0,
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn plain_markdown() {
        assert_eq!(
            parse("*a* **b** `c`"),
            vec![Node::Para(vec![
                Node::Emph(vec![Node::Text("a".into())]),
                Node::Text(" ".into()),
                Node::Strong(vec![Node::Text("b".into())]),
                Node::Text(" ".into()),
                Node::Code("c".into()),
            ])]
        );
        assert_eq!(
            parse("```\nfn main() {}\n```"),
            vec![Node::CodeBlock("fn main() {}".into())]
        );
        assert!(matches!(&parse("> hi")[0], Node::Quote(_)));
        assert!(
            matches!(&parse("1. a\n2. b")[0], Node::List { start: Some(1), children } if children.len() == 2)
        );
        assert!(matches!(
            &parse("- a\n- b")[0],
            Node::List { start: None, .. }
        ));
    }

    #[test]
    fn only_web_and_mail_links() {
        assert_eq!(
            hrefs("[x](https://example.com/a)"),
            vec!["https://example.com/a"]
        );
        assert_eq!(
            hrefs("[x](mailto:bob@example.com)"),
            vec!["mailto:bob@example.com"]
        );
        assert_eq!(hrefs("<bob@example.com>"), vec!["mailto:bob@example.com"]);
        for hostile in [
            "[x](javascript:alert(1))",
            "[x](JaVaScRiPt:alert(1))",
            "[x](  javascript:alert(1))",
            "<javascript:alert(1)>",
            "[x](data:text/html;base64,PHNjcmlwdD4=)",
            "[x](/relative/path)",
            "[x](vbscript:msgbox)",
            "[x](java\tscript:alert(1))",
            "![img](javascript:alert(1))",
        ] {
            assert_eq!(hrefs(hostile), Vec::<String>::new(), "{hostile}");
        }
        // The text of a refused link is still shown.
        assert_eq!(plain_text("[click me](javascript:alert(1))"), "click me");
    }

    #[test]
    fn raw_html_is_text() {
        assert_eq!(
            plain_text("<script>alert(1)</script>"),
            "<script>alert(1)</script>"
        );
        assert_eq!(
            plain_text("hi <img src=x onerror=alert(1)> there"),
            "hi <img src=x onerror=alert(1)> there"
        );
        assert_eq!(
            hrefs("<a href=\"javascript:alert(1)\">x</a>"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn bare_urls() {
        assert_eq!(
            hrefs("see https://example.com/a_b_c, and www.rust-lang.org."),
            vec!["https://example.com/a_b_c", "https://www.rust-lang.org"]
        );
        assert_eq!(
            hrefs("(see https://en.wikipedia.org/wiki/Rust_(programming_language))"),
            vec!["https://en.wikipedia.org/wiki/Rust_(programming_language)"]
        );
        assert_eq!(hrefs("`https://not.a.link`"), Vec::<String>::new());
        assert_eq!(hrefs("xhttps://example.com"), Vec::<String>::new());
        assert_eq!(hrefs("https:// nothing"), Vec::<String>::new());
        assert_eq!(hrefs("www. and www."), Vec::<String>::new());
        assert_eq!(
            hrefs("[https://a.example](https://b.example)"),
            vec!["https://b.example"]
        );
        assert_eq!(
            find_urls("é https://ü.example/ä ok")[0].1,
            "https://ü.example/ä"
        );
    }

    #[test]
    fn hostile_nesting_is_capped() {
        let quotes = ">".repeat(500) + " deep";
        assert!(depth(&parse(&quotes)) <= MAX_NESTING);
        assert_eq!(plain_text(&quotes), "deep");
        let mut lists = String::new();
        for i in 0..200 {
            lists.push_str(&"  ".repeat(i));
            lists.push_str("- x\n");
        }
        assert!(depth(&parse(&lists)) <= MAX_NESTING);
        let emphasis = "*a _".repeat(600);
        let _ = parse(&emphasis); // no stack overflow
        let brackets = "[".repeat(2000) + &"]".repeat(2000);
        let _ = parse(&brackets);
    }

    #[test]
    fn huge_code_block_is_one_block() {
        let body = format!("```\n{}\n```", "x = 1;\n".repeat(500));
        let nodes = parse(&body);
        assert_eq!(nodes.len(), 1);
        assert!(matches!(&nodes[0], Node::CodeBlock(t) if t.lines().count() == 500));
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn rendered_html_is_safe() {
        let html = |body: &str| render(body).to_html();
        let h =
            html("[x](javascript:alert(1)) <script>alert(1)</script> <img src=x onerror=alert(1)>");
        assert!(!h.contains("<script"), "{h}");
        assert!(!h.contains("<img"), "{h}");
        assert!(!h.contains("href"), "{h}");
        assert!(h.contains("&lt;script&gt;"), "{h}");
        let h = html("go to https://example.com now");
        assert!(
            h.contains(
                r#"<a href="https://example.com" rel="noopener noreferrer" target="_blank">"#
            ),
            "{h}"
        );
        let h = html("[mail](mailto:a@example.com)");
        assert!(
            h.contains(r#"href="mailto:a@example.com""#) && !h.contains("_blank"),
            "{h}"
        );
        let h = html("[x](https://example.com/\"onmouseover=\"alert(1))");
        assert!(!h.contains("\" onmouseover"), "{h}");
    }
}
