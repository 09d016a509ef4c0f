package apiserverbench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteTable writes results side by side as a Markdown table (one column
// per Result, one row per figure), aligned for reading in a terminal and
// ready to paste into a README.
func WriteTable(w io.Writer, results []*Result) error {
	if len(results) == 0 {
		return nil
	}
	c := results[0].Config
	rows := [][]string{{""}, {"server"}, {"store"},
		{fmt.Sprintf("pod creates/s (%d clients)", c.Clients)},
		{"create latency p50 / p90 / p99"},
		{fmt.Sprintf("LIST %s pods, p50 / p99", thousands(c.Pods))},
		{fmt.Sprintf("LIST in pages of %d, p50 / p99 (one page p99)", c.PageSize)},
		{fmt.Sprintf("watch delivery to %s watchers, p50 / p99", thousands(c.Watchers))},
		{"deliveries before the write's response"},
		{"watch delivery from the write's request, p50 / p99"},
	}
	for _, r := range results {
		cells := []string{
			r.Target.Name,
			r.ServerVersion,
			r.Target.Store,
			fmt.Sprintf("%.0f", r.Create.PerSecond),
			fmt.Sprintf("%s / %s / %s", ms(r.Create.Latency.P50), ms(r.Create.Latency.P90), ms(r.Create.Latency.P99)),
			fmt.Sprintf("%s / %s", ms(r.List.Latency.P50), ms(r.List.Latency.P99)),
			fmt.Sprintf("%s / %s (%s)", ms(r.ListPaged.Latency.P50), ms(r.ListPaged.Latency.P99), pageP99(r.ListPaged)),
			fmt.Sprintf("%s / %s", ms(r.Watch.Latency.P50), ms(r.Watch.Latency.P99)),
			early(r.Watch),
			fmt.Sprintf("%s / %s", ms(r.Watch.FromRequest.P50), ms(r.Watch.FromRequest.P99)),
		}
		for i := range rows {
			rows[i] = append(rows[i], cells[i])
		}
	}
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			width[i] = max(width[i], len(cell))
		}
	}
	var b strings.Builder
	line := func(row []string, align bool) {
		for i, cell := range row {
			pad := strings.Repeat(" ", width[i]-len(cell))
			if i > 0 && align {
				cell = pad + cell
			} else {
				cell += pad
			}
			b.WriteString("| " + cell + " ")
		}
		b.WriteString("|\n")
	}
	line(rows[0], false)
	for i := range width {
		if i == 0 {
			b.WriteString("| " + strings.Repeat("-", width[i]) + " ")
		} else {
			b.WriteString("| " + strings.Repeat("-", width[i]-1) + ": ")
		}
	}
	b.WriteString("|\n")
	for _, row := range rows[1:] {
		line(row, true)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// early is the share of deliveries that beat the write's response.
func early(r WatchResult) string {
	if r.Delivered == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(r.Early)/float64(r.Delivered))
}

// pageP99 is the paged LIST's per-request p99, or "-".
func pageP99(r ListResult) string {
	if r.PageLatency == nil {
		return "-"
	}
	return ms(r.PageLatency.P99)
}

// ms formats d in milliseconds with about three significant digits.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f ms", v)
	case v < 100:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.0f ms", v)
	}
}

// thousands writes n with a space between groups of three digits ("10 000").
func thousands(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}
