"use strict";
// A small Markdown renderer that builds DOM nodes and never parses HTML: whatever a model writes, `<script>` and
// `<img onerror>` included, ends up as text. Fenced code blocks (with a copy button), headings, lists, quotes,
// paragraphs, and inline code, bold, italic and http(s) links.

QS.copyText = async (text, button) => {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = QS.element("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = "Copy"; }, 1200);
};

QS.codeBlock = (code, language) => {
  const box = QS.element("div", "code-block");
  const head = QS.element("div", "code-head");
  head.append(QS.element("span", "code-language", language || "code"));
  const copy = QS.element("button", "copy", "Copy");
  copy.type = "button";
  copy.addEventListener("click", () => QS.copyText(code, copy));
  head.append(copy);
  const pre = QS.element("pre");
  pre.append(QS.element("code", null, code));
  box.append(head, pre);
  return box;
};

// Inline spans of one line of text, as nodes.
QS.inline = (text) => {
  const nodes = [];
  // Underscores emphasise only outside words (snake_case and __dunder__ stay as written, as in CommonMark).
  const pattern = /(`+)([^`]+?)\1|\*\*([^*]+)\*\*|(?<!\w)__([^_]+)__(?!\w)|\*([^*\s][^*]*)\*|(?<!\w)_([^_\s][^_]*)_(?!\w)|\[([^\]]+)\]\((https?:\/\/[^\s)]+)\)/g;
  let at = 0, m;
  while ((m = pattern.exec(text)) !== null) {
    if (m.index > at) nodes.push(document.createTextNode(text.slice(at, m.index)));
    if (m[2] !== undefined) nodes.push(QS.element("code", null, m[2]));
    else if (m[3] !== undefined || m[4] !== undefined) nodes.push(QS.element("strong", null, m[3] ?? m[4]));
    else if (m[5] !== undefined || m[6] !== undefined) nodes.push(QS.element("em", null, m[5] ?? m[6]));
    else {
      const a = QS.element("a", null, m[7]);
      a.href = m[8];
      a.rel = "noopener noreferrer nofollow";
      a.target = "_blank";
      nodes.push(a);
    }
    at = m.index + m[0].length;
  }
  if (at < text.length) nodes.push(document.createTextNode(text.slice(at)));
  return nodes;
};

QS.renderMarkdown = (text, container) => {
  const out = [];
  const lines = text.split("\n");
  let i = 0;
  let paragraph = [];
  const flush = () => {
    if (paragraph.length === 0) return;
    const p = QS.element("p");
    paragraph.forEach((line, k) => {
      if (k > 0) p.append(QS.element("br"));
      p.append(...QS.inline(line));
    });
    out.push(p);
    paragraph = [];
  };
  while (i < lines.length) {
    const line = lines[i];
    const fence = line.match(/^\s*(```+|~~~+)\s*([\w+#.-]*)/);
    if (fence) {
      flush();
      const close = fence[1];
      const code = [];
      i++;
      // An unclosed fence (a stream still writing it) runs to the end.
      while (i < lines.length && !lines[i].trim().startsWith(close)) code.push(lines[i++]);
      i++;
      out.push(QS.codeBlock(code.join("\n"), fence[2]));
      continue;
    }
    const heading = line.match(/^(#{1,6})\s+(.*)$/);
    if (heading) {
      flush();
      const h = QS.element("h" + Math.min(6, heading[1].length + 2));
      h.append(...QS.inline(heading[2]));
      out.push(h);
      i++;
      continue;
    }
    const item = line.match(/^\s*([-*+]|\d+[.)])\s+(.*)$/);
    if (item) {
      flush();
      const list = QS.element(/\d/.test(item[1]) ? "ol" : "ul");
      while (i < lines.length) {
        const m = lines[i].match(/^\s*([-*+]|\d+[.)])\s+(.*)$/);
        if (!m) break;
        const li = QS.element("li");
        li.append(...QS.inline(m[2]));
        list.append(li);
        i++;
      }
      out.push(list);
      continue;
    }
    if (line.startsWith(">")) {
      flush();
      const quote = QS.element("blockquote");
      const quoted = [];
      while (i < lines.length && lines[i].startsWith(">")) quoted.push(lines[i++].replace(/^>\s?/, ""));
      QS.renderMarkdown(quoted.join("\n"), quote);
      out.push(quote);
      continue;
    }
    if (line.trim() === "") flush(); else paragraph.push(line);
    i++;
  }
  flush();
  container.replaceChildren(...out);
};
