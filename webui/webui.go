// Package webui holds the admin portal's and the status page's assets,
// embedded in the binary: plain HTML, CSS and JavaScript with no build
// step and no third-party code.
package webui

import (
	"embed"
	"html/template"
	"io/fs"
)

//go:embed static
var static embed.FS

//go:embed status.html
var statusHTML string

// Static is the portal's files (index.html, app.js, app.css), served
// under /admin/.
var Static, _ = fs.Sub(static, "static")

// StatusPage renders the public status page (status.html).
var StatusPage = template.Must(template.New("status").Funcs(template.FuncMap{
	"stateText": stateText,
}).Parse(statusHTML))

func stateText(lang, state string) string {
	vi := map[string]string{"operational": "Hoạt động bình thường", "degraded": "Suy giảm", "outage": "Gián đoạn"}
	en := map[string]string{"operational": "Operational", "degraded": "Degraded", "outage": "Outage"}
	if lang == "vi" {
		return vi[state]
	}
	return en[state]
}
