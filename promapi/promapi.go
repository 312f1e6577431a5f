// Package promapi runs instant queries against the Prometheus HTTP API
// (GET /api/v1/query). Its wire types stay here; callers get Samples.
package promapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxAnswer bounds an answer kept in memory: a halt query returns a few
// series, a mistaken one thousands, never megabytes worth keeping.
const maxAnswer = 32 << 20

// Sample is one series of an instant vector: its labels and value.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Client queries one Prometheus server.
type Client struct {
	base *url.URL
	http *http.Client
}

// New returns a client for the Prometheus server at baseURL
// (e.g. http://prometheus:9090, or a path prefix behind a proxy). A nil
// httpClient means one with a 30 s timeout.
func New(baseURL string, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("prometheus url %q: not an http or https URL", baseURL)
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: u, http: httpClient}, nil
}

// answer is the API's envelope.
type answer struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

type data struct {
	ResultType string          `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

type vectorSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// Query runs query at the server's current time and returns the series of
// the instant vector it evaluates to. A query that evaluates to a scalar, a
// string or a range vector is an error: a halt rule names series.
func (c *Client) Query(ctx context.Context, query string) ([]Sample, error) {
	u := c.base.JoinPath("api/v1/query")
	u.RawQuery = url.Values{"query": {query}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("prometheus query: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("prometheus query: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("prometheus query: reading the answer: %w", err)
	}
	if len(body) > maxAnswer {
		return nil, fmt.Errorf("prometheus query: answer larger than %d MiB", maxAnswer>>20)
	}
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("prometheus query: HTTP %d with no API answer: %s", resp.StatusCode, snippet(body))
	}
	if a.Status != "success" {
		return nil, fmt.Errorf("prometheus query: %s: %s", nonEmpty(a.ErrorType, "HTTP "+strconv.Itoa(resp.StatusCode)), nonEmpty(a.Error, "no error message"))
	}
	var d data
	if err := json.Unmarshal(a.Data, &d); err != nil {
		return nil, fmt.Errorf("prometheus query: data: %w", err)
	}
	if d.ResultType != "vector" {
		return nil, fmt.Errorf("prometheus query: result is a %s, not an instant vector (write a query that returns series)", d.ResultType)
	}
	var raw []vectorSample
	if err := json.Unmarshal(d.Result, &raw); err != nil {
		return nil, fmt.Errorf("prometheus query: result: %w", err)
	}
	out := make([]Sample, 0, len(raw))
	for _, s := range raw {
		v, err := sampleValue(s.Value[1])
		if err != nil {
			return nil, fmt.Errorf("prometheus query: series %v: %w", s.Metric, err)
		}
		out = append(out, Sample{Labels: s.Metric, Value: v})
	}
	return out, nil
}

// sampleValue decodes a sample's value, which the API sends as a string
// ("1", "NaN", "+Inf").
func sampleValue(v any) (float64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, errors.New("value is not a string")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("value %q: %w", s, err)
	}
	return f, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return strconv.Quote(s)
}

func nonEmpty(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}
