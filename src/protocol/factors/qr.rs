//! QR codes as SVG, made on the server: the TOTP enrolment page shows the `otpauth://`
//! URI as one without any script, and it scales sharply at any size.

use qrcodegen::{QrCode, QrCodeEcc};

/// ISO/IEC 18004 asks for a quiet zone of four light modules on every side.
const QUIET_ZONE: i32 = 4;
/// Pixels per module of the SVG's default size (a stylesheet may set another).
const MODULE_PIXELS: i32 = 4;

/// `text` as a QR code (error correction level M), as an SVG element with `aria_label`
/// as its accessible name; `None` if the text is too long for any QR code (about 2,300
/// bytes at level M; an `otpauth://` URI is about 150).
pub fn qr_svg(text: &str, aria_label: &str) -> Option<String> {
    let qr = QrCode::encode_text(text, QrCodeEcc::Medium).ok()?;
    Some(svg(&qr, aria_label))
}

fn svg(qr: &QrCode, aria_label: &str) -> String {
    let size = qr.size() + 2 * QUIET_ZONE;
    let mut path = String::new();
    // One rectangle per run of dark modules in a row.
    for y in 0..qr.size() {
        let mut x = 0;
        while x < qr.size() {
            if !qr.get_module(x, y) {
                x += 1;
                continue;
            }
            let start = x;
            while x < qr.size() && qr.get_module(x, y) {
                x += 1;
            }
            path.push_str(&format!(
                "M{},{}h{}v1h-{}z",
                start + QUIET_ZONE,
                y + QUIET_ZONE,
                x - start,
                x - start
            ));
        }
    }
    let pixels = size * MODULE_PIXELS;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" \
         width=\"{pixels}\" height=\"{pixels}\" shape-rendering=\"crispEdges\" role=\"img\" \
         aria-label=\"{label}\"><rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/>\
         <path fill=\"#000\" d=\"{path}\"/></svg>",
        label = escape_attribute(aria_label),
    )
}

/// Text for an XML attribute in double quotes.
fn escape_attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "otpauth://totp/Portcullis:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
                       &issuer=Portcullis&algorithm=SHA1&digits=6&period=30";

    fn attribute<'a>(svg: &'a str, name: &str) -> &'a str {
        let start = svg.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        let end = start + svg[start..].find('"').unwrap();
        &svg[start..end]
    }

    /// The dark modules the path draws, as (x, y) in QR coordinates.
    fn drawn(svg: &str) -> Vec<(i32, i32)> {
        let mut modules = Vec::new();
        for rect in attribute(svg, "d").split('z').filter(|r| !r.is_empty()) {
            let rect = rect.strip_prefix('M').unwrap();
            let (origin, rest) = rect.split_once('h').unwrap();
            let (x, y) = origin.split_once(',').unwrap();
            let (x, y): (i32, i32) = (x.parse().unwrap(), y.parse().unwrap());
            let width: i32 = rest.split_once('v').unwrap().0.parse().unwrap();
            modules.extend((x..x + width).map(|x| (x - QUIET_ZONE, y - QUIET_ZONE)));
        }
        modules
    }

    #[test]
    fn the_svg_is_the_qr_code_with_its_quiet_zone() {
        let svg = qr_svg(URI, "QR code").unwrap();
        let qr = QrCode::encode_text(URI, QrCodeEcc::Medium).unwrap();
        let version = i32::from(qr.version().value());
        // ISO/IEC 18004: a version-V symbol is 17 + 4V modules wide.
        let modules = 17 + 4 * version;
        let side = modules + 2 * QUIET_ZONE;
        assert_eq!(attribute(&svg, "viewBox"), format!("0 0 {side} {side}"));
        assert_eq!(attribute(&svg, "shape-rendering"), "crispEdges");
        assert_eq!(attribute(&svg, "role"), "img");
        assert_eq!(attribute(&svg, "aria-label"), "QR code");
        let mut expected = Vec::new();
        for y in 0..modules {
            for x in 0..modules {
                if qr.get_module(x, y) {
                    expected.push((x, y));
                }
            }
        }
        assert_eq!(drawn(&svg), expected);
        assert!(!svg.contains("<script"));
    }

    #[test]
    fn the_label_is_escaped_and_overlong_text_is_refused() {
        let svg = qr_svg("x", "Code \"QR\" <de> l'app & co").unwrap();
        assert_eq!(
            attribute(&svg, "aria-label"),
            "Code &quot;QR&quot; &lt;de&gt; l&#39;app &amp; co"
        );
        assert_eq!(qr_svg(&"x".repeat(5000), "QR code"), None);
    }
}
