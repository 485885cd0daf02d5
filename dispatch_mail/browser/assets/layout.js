({ probe, minimum }) => {
  // What a reader's browser makes of the email, for screenshot.py's layout report.
  // Run by Playwright's page.evaluate(); JavaScript stays off inside the page itself.
  const describe = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.id) s += '#' + el.id;
    const cls = (el.getAttribute('class') || '').trim().split(/\s+/).filter(Boolean).slice(0, 2);
    if (cls.length) s += '.' + cls.join('.');
    return s;
  };

  // Does the page scroll sideways, and which outermost elements stick out?
  const overflow = () => {
    const root = document.documentElement;
    const viewport = root.clientWidth;
    const overflowing = [];
    const sticksOut = (el) => el && el.getBoundingClientRect().right > viewport + 0.5;
    for (const el of document.body.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (r.width && sticksOut(el) && !sticksOut(el.parentElement)) {
        overflowing.push({element: describe(el), right: Math.round(r.right)});
        if (overflowing.length >= 10) break;
      }
    }
    return {viewport: viewport, scroll_width: root.scrollWidth,
            horizontal_scroll: root.scrollWidth > viewport, overflowing: overflowing};
  };

  const images = () => {
    const imgs = [...document.images];
    const name = (img) => (img.getAttribute('src') || '').slice(0, 120);
    const blank = (img) => img.hasAttribute('alt') && !img.getAttribute('alt').trim();
    return {count: imgs.length,
            missing_alt: imgs.filter(i => !i.hasAttribute('alt')).map(name),
            empty_alt: imgs.filter(blank).map(name)};
  };

  // Main text: what the reader reads. Each element counts only if it paints text of its own.
  const contrast = () => {
    const SELECTOR = '.dm-text, .dm-text p, .dm-text li, .dm-text h1, .dm-text h2, .dm-text h3, '
      + '.dm-text h4, h1, h2, h3';
    const parse = (value) => {
      const m = /^rgba?\(([^)]*)\)$/.exec(value.trim());
      if (!m) return null;
      const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(parseFloat);
      return p.length >= 3 ? [p[0], p[1], p[2], p.length > 3 ? p[3] : 1] : null;
    };
    const over = (top, bottom) =>
      [0, 1, 2].map(i => top[i] * top[3] + bottom[i] * (1 - top[3])).concat([1]);
    const linear = (v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    };
    const lum = (c) => {
      const [r, g, b] = c.slice(0, 3).map(linear);
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const ratio = (a, b) => {
      const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
      return (x + 0.05) / (y + 0.05);
    };
    const hex = (c) =>
      '#' + c.slice(0, 3).map(v => Math.round(v).toString(16).padStart(2, '0')).join('');
    // The canvas behind everything: 'Canvas' resolves per the page's used colour scheme.
    const probe = document.createElement('div');
    probe.style.backgroundColor = 'Canvas';
    document.body.appendChild(probe);
    const canvas = parse(getComputedStyle(probe).backgroundColor) || [255, 255, 255, 1];
    probe.remove();
    const background = (el) => {
      const layers = [];
      let image = false;
      for (let node = el; node; node = node.parentElement) {
        const style = getComputedStyle(node);
        if (style.backgroundImage && style.backgroundImage !== 'none') image = true;
        const bg = parse(style.backgroundColor);
        if (bg && bg[3] > 0) { layers.push(bg); if (bg[3] >= 1) break; }
      }
      let colour = [canvas[0], canvas[1], canvas[2], 1];
      for (const layer of layers.reverse()) colour = over(layer, colour);
      return {colour: colour, image: image};
    };
    const hidden = (el) => {
      if (!el.getClientRects().length) return true;
      for (let node = el; node; node = node.parentElement) {
        const style = getComputedStyle(node);
        if (style.visibility === 'hidden' || parseFloat(style.opacity) === 0) return true;
      }
      return false;
    };
    const ownText = (el) => [...el.childNodes].filter(n => n.nodeType === 3)
      .map(n => n.textContent).join('').replace(/\s+/g, ' ').trim();
    const results = [];
    let uncertain = 0;
    for (const el of new Set(document.querySelectorAll(SELECTOR))) {
      const own = ownText(el);
      if (!own || hidden(el)) continue;
      const style = getComputedStyle(el);
      const fg = parse(style.color);
      const bg = background(el);
      if (!fg) { uncertain++; continue; }
      if (bg.image) { uncertain++; continue; }  // text over a picture: no single colour to measure
      const colour = fg[3] < 1 ? over(fg, bg.colour) : fg;
      const size = parseFloat(style.fontSize);
      const bold = parseInt(style.fontWeight, 10) >= 700;
      results.push({element: describe(el), text: own.slice(0, 60), color: hex(colour),
                    background: hex(bg.colour),
                    ratio: Math.round(ratio(colour, bg.colour) * 100) / 100,
                    large: size >= 24 || (bold && size >= 18.66)});
    }
    results.sort((a, b) => a.ratio - b.ratio);
    return {checked: results.length, uncertain: uncertain, minimum: minimum,
            min_ratio: results.length ? results[0].ratio : null,
            below: results.filter(r => r.ratio < minimum).length,
            canvas: hex(canvas), worst: results.slice(0, 5)};
  };

  return {overflow, images, contrast}[probe]();
}
