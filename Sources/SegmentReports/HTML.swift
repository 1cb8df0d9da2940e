// One self-contained HTML file for people to look at: styles, pictures (PNG as base64 data URIs) and the table
// sorter are inline, so the file opens from disk with no network. Every string that came from a file or a command
// line (case names, paths, class names, error texts) goes through `escape`.
import Foundation

/// A picture embedded in a page: PNG bytes and the size it is shown at.
public struct HTMLPicture: Sendable, Equatable {
    public var caption: String
    public var png: Data
    public var width: Int
    public var height: Int

    public init(caption: String, png: Data, width: Int, height: Int) {
        self.caption = caption; self.png = png; self.width = width; self.height = height
    }
}

enum HTML {
    /// Text and attribute values: & < > " ' replaced by entities, so no string can open a tag, end an attribute or
    /// start a script.
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    /// A number as a data attribute holds it: the shortest decimal that reads back as the same Double (as the JSON
    /// reports write it), or "nan", "inf", "-inf".
    static func exact(_ v: Double) -> String {
        v.isNaN ? "nan" : v.isInfinite ? (v > 0 ? "inf" : "-inf") : "\(v)"
    }

    /// A number as shown: `decimals` places; "–" for NaN (not defined, e.g. both masks empty), "∞" for infinity.
    static func shown(_ v: Double, decimals: Int) -> String {
        v.isNaN ? "–" : v.isInfinite ? (v > 0 ? "∞" : "−∞") : String(format: "%.\(decimals)f", v)
    }

    /// A table cell with the exact value in data-value (what the sorter and the tests read) and the rounded one shown.
    static func numberCell(_ v: Double, decimals: Int, column: String? = nil, extra: String = "") -> String {
        let col = column.map { " data-col=\"\(escape($0))\"" } ?? ""
        return "<td class=\"num\"\(col) data-value=\"\(exact(v))\"\(extra)>\(shown(v, decimals: decimals))</td>"
    }

    static func picture(_ p: HTMLPicture) -> String {
        "<figure><img alt=\"\(escape(p.caption))\" width=\"\(p.width)\" height=\"\(p.height)\" "
            + "src=\"data:image/png;base64,\(p.png.base64EncodedString())\"><figcaption>\(escape(p.caption))</figcaption></figure>"
    }

    /// The whole document around `body`.
    static func document(title: String, body: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escape(title))</title>
        <style>\(css)</style>
        </head>
        <body>
        \(body)
        <script>\(sorter)</script>
        </body>
        </html>

        """
    }

    static let css = """
    body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1a1a1a;background:#fff}
    h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}h3{font-size:15px;margin:18px 0 6px}
    .meta{color:#555;margin:0 0 12px}.meta code{font-size:12px}
    table{border-collapse:collapse;margin:6px 0 14px}th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
    th{background:#f1f1f1}td.num{text-align:right;font-variant-numeric:tabular-nums}
    table.sortable th[data-sort]{cursor:pointer;user-select:none}table.sortable th[data-sort]:hover{background:#e2e8f0}
    th.sorted-asc::after{content:" \\25B2"}th.sorted-desc::after{content:" \\25BC"}
    tr.failed td{background:#fde8e8}.status-failed{color:#b00020;font-weight:600}.status-skipped{color:#8a6d00}
    figure{display:inline-block;margin:4px 8px 8px 0;vertical-align:top}figcaption{font-size:12px;color:#555}
    img{image-rendering:auto;max-width:100%;height:auto}td img{max-width:256px}.case img{max-width:380px}
    .case{border-top:1px solid #ddd;padding-top:8px;margin-top:14px}.error{color:#b00020;white-space:pre-wrap}
    .note{color:#555;font-size:12px;max-width:1000px}svg text{font:11px system-ui,sans-serif}
    .swatch{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
    """

    /// Sorts a table.sortable by a clicked header (a second click reverses it). A header's data-sort is "num" or
    /// "text", its data-worst "asc" or "desc" (the direction that puts the worst cases first, used by the first click).
    /// NaN ("nan": not defined) sorts last either way. `#sort=COLUMN` (and `&dir=asc|desc`) in the address sorts
    /// on load, so a sorted view can be linked.
    static let sorter = """
    (function(){
    "use strict";
    function val(td,num){var v=td?td.getAttribute("data-value"):null;if(v===null)v=td?td.textContent:"";
    if(!num)return v;if(v==="inf")return Infinity;if(v==="-inf")return -Infinity;var x=parseFloat(v);return x;}
    function sortBy(table,th,dir){
    var idx=Array.prototype.indexOf.call(th.parentNode.children,th),num=th.getAttribute("data-sort")==="num";
    var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){var x=val(a.cells[idx],num),y=val(b.cells[idx],num);
    if(num){var nx=isNaN(x),ny=isNaN(y);if(nx||ny)return nx===ny?0:(nx?1:-1);return dir==="asc"?x-y:y-x;}
    return dir==="asc"?(x<y?-1:x>y?1:0):(x<y?1:x>y?-1:0);});
    rows.forEach(function(r){body.appendChild(r);});
    Array.prototype.forEach.call(th.parentNode.children,function(h){h.classList.remove("sorted-asc","sorted-desc");});
    th.classList.add("sorted-"+dir);table.setAttribute("data-sorted",th.getAttribute("data-col")+" "+dir);}
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"),function(table){
    Array.prototype.forEach.call(table.querySelectorAll("th[data-sort]"),function(th){
    th.addEventListener("click",function(){var d=th.classList.contains("sorted-asc")?"desc":th.classList.contains("sorted-desc")?"asc":(th.getAttribute("data-worst")||"asc");sortBy(table,th,d);});});});
    var m=/(?:^#|&)sort=([^&]*)(?:&dir=(asc|desc))?/.exec(location.hash);
    if(m){var col=decodeURIComponent(m[1]);Array.prototype.forEach.call(document.querySelectorAll("table.sortable th[data-sort]"),function(th){
    if(th.getAttribute("data-col")===col){var t=th.closest("table");sortBy(t,th,m[2]||th.getAttribute("data-worst")||"asc");}});}
    document.body.setAttribute("data-ready","1");
    })();
    """
}
