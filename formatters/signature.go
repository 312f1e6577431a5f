package formatters

import "strings"

// stateLabels turns failed-state signatures ("fun|id|comment", or
// "compile_error|sls|message") into what a person reads:
// "file.managed /etc/nginx/nginx.conf: Source file … not found".
func stateLabels(sigs []string) []string {
	out := make([]string, len(sigs))
	for i, sig := range sigs {
		out[i] = signatureLabel(sig)
	}
	return out
}

func signatureLabel(sig string) string {
	parts := strings.SplitN(sig, "|", 3)
	// Salt's own state keys (file_|-id_|-name_|-managed) are shown as they are.
	if len(parts) != 3 || strings.Contains(sig, "_|-") {
		return sig
	}
	head := parts[0] + " " + parts[1]
	if parts[0] == "compile_error" {
		head = "compile error in " + parts[1]
	}
	if parts[2] == "" {
		return head
	}
	return head + ": " + parts[2]
}
