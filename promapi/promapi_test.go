package promapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/sift-chatops/sift/promapi"
)

func TestQuery(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		want    []promapi.Sample
		wantErr string
	}{
		{
			name:   "vector",
			status: 200,
			body: `{"status":"success","data":{"resultType":"vector","result":[
				{"metric":{"datacenter":"ams01","job":"ci"},"value":[1700000000.123,"1"]},
				{"metric":{"datacenter":"fra02"},"value":[1700000000.123,"0.5"]}]}}`,
			want: []promapi.Sample{
				{Labels: map[string]string{"datacenter": "ams01", "job": "ci"}, Value: 1},
				{Labels: map[string]string{"datacenter": "fra02"}, Value: 0.5},
			},
		},
		{
			name:   "empty vector",
			status: 200,
			body:   `{"status":"success","data":{"resultType":"vector","result":[]}}`,
			want:   []promapi.Sample{},
		},
		{
			name:    "bad query",
			status:  400,
			body:    `{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected end of input"}`,
			wantErr: "prometheus query: bad_data: 1:5: parse error",
		},
		{
			name:    "scalar",
			status:  200,
			body:    `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"1"]}}`,
			wantErr: "result is a scalar, not an instant vector",
		},
		{
			name:    "proxy page",
			status:  502,
			body:    `<html>Bad Gateway</html>`,
			wantErr: "HTTP 502 with no API answer",
		},
		{
			name:    "bad value",
			status:  200,
			body:    `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}`,
			wantErr: `value "x"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var gotQuery, gotPath string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotPath, gotQuery = r.URL.Path, r.URL.Query().Get("query")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c, err := promapi.New(srv.URL+"/prom/", nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Query(context.Background(), `sift_halt{env="prod"} > 0`)
			if gotPath != "/prom/api/v1/query" || gotQuery != `sift_halt{env="prod"} > 0` {
				t.Errorf("request %s ?query=%s", gotPath, gotQuery)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Query = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	for _, u := range []string{"", "prometheus:9090", "ftp://x", "http://"} {
		if _, err := promapi.New(u, nil); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}
