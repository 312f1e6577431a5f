package formatters

import "testing"

func TestSignatureLabel(t *testing.T) {
	tests := []struct{ sig, want string }{
		{"file.managed|/etc/nginx/nginx.conf|Source file salt://x not found", "file.managed /etc/nginx/nginx.conf: Source file salt://x not found"},
		{"compile_error|webserver.tls|Jinja error: <n>", "compile error in webserver.tls: Jinja error: <n>"},
		{"service.running|ntp|", "service.running ntp"},
		{"file_|-conf_|-/etc/x_|-managed", "file_|-conf_|-/etc/x_|-managed"},
		{"no separators", "no separators"},
	}
	for _, tc := range tests {
		if got := signatureLabel(tc.sig); got != tc.want {
			t.Errorf("signatureLabel(%q) = %q, want %q", tc.sig, got, tc.want)
		}
	}
}
