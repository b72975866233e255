package bench

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"strings"
	"sync"
)

// denseRecord is a page as dense as an electronic health record's: a
// header, a navigation column, two columns of 13-pixel text with lists, and
// a table of laboratory values, in Japanese and English. It fills the
// viewport with small glyphs, the hardest case for a lossy encoder.
func denseRecord() string {
	ja := []string{
		"入院時より発熱と咳嗽が持続し、胸部単純写真で右下肺野に浸潤影を認めた。",
		"喀痰培養では肺炎球菌が検出され、感受性結果を確認のうえ抗菌薬を変更した。",
		"腎機能は入院三日目より改善傾向にあり、補液量を漸減した。",
		"既往歴として高血圧症、二型糖尿病があり、内服薬は継続とした。",
		"食事摂取量は五割程度で、栄養サポートチームに介入を依頼した。",
	}
	en := []string{
		"Temperature 38.2 °C on admission, SpO2 93 % on room air, respiratory rate 24/min.",
		"Ceftriaxone 2 g daily started on day 1; switched to oral amoxicillin on day 5.",
		"No drug allergies known. Lives alone; daughter visits twice a week.",
		"Plan: repeat chest radiograph in six weeks, review glucose control at discharge.",
		"Nursing: fall risk high, pressure ulcer risk moderate, repositioning every 2 h.",
	}
	var b strings.Builder
	b.WriteString(`<style>body{margin:0;background:#fff;color:#1a1a1a;font:13px/1.45 "Noto Sans CJK JP",sans-serif;overflow:hidden}
header{background:#234;color:#fff;padding:6px 16px;font:bold 14px sans-serif}
nav{position:absolute;left:0;top:30px;width:170px;bottom:0;background:#eef1f4;padding:8px;font-size:12px}
nav li{margin:2px 0}main{position:absolute;left:196px;right:16px;top:30px;columns:2;column-gap:24px}
h3{font:bold 13px sans-serif;margin:8px 0 2px;border-bottom:1px solid #9ab}p{margin:0 0 6px}
table{border-collapse:collapse;width:100%;font-size:12px}td,th{border:1px solid #bbb;padding:1px 4px;text-align:left}
th{background:#e4e8ec}.h{color:#b00;font-weight:bold}</style>
<header>電子カルテ — 患者 ID 0012-3456 — 山田 太郎 (78) — 内科病棟 5B</header><nav><ul>`)
	for i, s := range []string{"経過記録", "指示", "検査結果", "画像", "処方", "看護記録", "退院サマリ", "紹介状", "同意書", "Vital signs", "Allergies", "Problem list"} {
		fmt.Fprintf(&b, "<li>%d. %s</li>", i+1, s)
	}
	b.WriteString("</ul></nav><main>")
	for i := range 14 {
		fmt.Fprintf(&b, "<h3>%d月%d日 経過 / Progress note day %d</h3>", 4+i/8, 1+i*2, i+1)
		for j := range 2 {
			fmt.Fprintf(&b, "<p>%s %s %s</p>", ja[(i+j)%len(ja)], html.EscapeString(en[(i+2*j)%len(en)]), ja[(i+j+2)%len(ja)])
		}
		if i%4 == 1 {
			b.WriteString("<table><tr><th>検査</th><th>結果</th><th>基準値</th><th>単位</th></tr>")
			for k, l := range []string{"WBC", "Hb", "PLT", "CRP", "BUN", "Cre", "Na", "K"} {
				v := fmt.Sprintf("%.1f", 3+float64((i*7+k*13)%90)/10)
				cls := ""
				if (i+k)%5 == 0 {
					cls = ` class="h"`
				}
				fmt.Fprintf(&b, "<tr><td>%s</td><td%s>%s</td><td>%d–%d</td><td>mg/dL</td></tr>", l, cls, v, k+1, k+9)
			}
			b.WriteString("</table>")
		}
	}
	b.WriteString("</main>")
	return b.String()
}

// photoGallery is a page of photographs, as a dermatology or wound-care
// record shows them: six pictures with captions. The pictures are made
// here, deterministically, with the texture of photographs (smooth light,
// fine grain, soft edges), and embedded as JPEG data URLs.
var photoGallery = sync.OnceValue(func() string {
	var b strings.Builder
	b.WriteString(`<style>body{margin:0;background:#f4f4f2;color:#222;font:14px sans-serif;overflow:hidden}
h1{font:bold 18px sans-serif;margin:10px 20px}.g{display:grid;grid-template-columns:repeat(3,400px);gap:12px 16px;margin:0 20px}
figure{margin:0}img{display:block;width:400px;height:260px}figcaption{margin-top:3px;font-size:12px;color:#555}</style>
<h1>創傷写真 / Wound photographs — 2024-05-02</h1><div class="g">`)
	for i := range 6 {
		img := photo(400, 260, uint32(i+1), i >= 4)
		var buf bytes.Buffer
		_ = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 92})
		fmt.Fprintf(&b, `<figure><img alt="photo %d" src="data:image/jpeg;base64,%s"><figcaption>写真 %d: 左下腿 外側 / left lower leg, lateral — day %d</figcaption></figure>`,
			i+1, base64.StdEncoding.EncodeToString(buf.Bytes()), i+1, 3*i+1)
	}
	b.WriteString("</div>")
	return b.String()
})

// photo makes a w×h picture with a photograph's statistics from seed:
// fractal noise for light and texture, a tinted palette, a soft-edged
// blob for a subject, and grain. gray makes it a radiograph-like
// greyscale.
func photo(w, h int, seed uint32, gray bool) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	base := [3]float64{0.78, 0.55, 0.45} // skin-like
	sub := [3]float64{0.55, 0.2, 0.18}   // the subject: darker, redder
	if seed%2 == 0 {
		base, sub = [3]float64{0.45, 0.6, 0.75}, [3]float64{0.3, 0.42, 0.2} // sky and foliage
	}
	cx, cy := float64(w)*(0.35+0.1*float64(seed%3)), float64(h)*0.55
	for y := range h {
		for x := range w {
			fx, fy := float64(x), float64(y)
			light := fbm(fx/140, fy/140, seed, 4)
			tex := fbm(fx/9, fy/9, seed+99, 3)
			d := math.Hypot((fx-cx)/(float64(w)*0.22), (fy-cy)/(float64(h)*0.3)) + 0.5*(fbm(fx/40, fy/40, seed+7, 3)-0.5)
			m := 1 / (1 + math.Exp((d-1)*8)) // soft edge
			grain := (hash2(x, y, seed+3) - 0.5) * 0.04
			var c [3]float64
			for k := range 3 {
				v := base[k]*(1-m) + sub[k]*m
				c[k] = v*(0.7+0.5*light) + 0.12*(tex-0.5) + grain
			}
			if gray {
				g := 0.15 + 0.7*(fbm(fx/60, fy/60, seed, 5)*0.6+m*0.4) + grain
				c = [3]float64{g, g, g}
			}
			img.SetRGBA(x, y, color.RGBA{unit8(c[0]), unit8(c[1]), unit8(c[2]), 255})
		}
	}
	return img
}

// fbm is fractal value noise in [0, 1] at x, y over octaves.
func fbm(x, y float64, seed uint32, octaves int) float64 {
	sum, amp, norm := 0.0, 1.0, 0.0
	for o := range octaves {
		sum += amp * valueNoise(x, y, seed+uint32(o)*1013)
		norm += amp
		amp /= 2
		x, y = x*2, y*2
	}
	return sum / norm
}

// valueNoise interpolates random lattice values smoothly.
func valueNoise(x, y float64, seed uint32) float64 {
	x0, y0 := math.Floor(x), math.Floor(y)
	tx, ty := x-x0, y-y0
	tx, ty = tx*tx*(3-2*tx), ty*ty*(3-2*ty)
	ix, iy := int(x0), int(y0)
	a, b := hash2(ix, iy, seed), hash2(ix+1, iy, seed)
	c, d := hash2(ix, iy+1, seed), hash2(ix+1, iy+1, seed)
	return (a*(1-tx)+b*tx)*(1-ty) + (c*(1-tx)+d*tx)*ty
}

// hash2 is a deterministic pseudo-random value in [0, 1) for a lattice
// point.
func hash2(x, y int, seed uint32) float64 {
	h := uint32(x)*0x8da6b343 ^ uint32(y)*0xd8163841 ^ seed*0xcb1ab31f
	h ^= h >> 13
	h *= 0x5bd1e995
	h ^= h >> 15
	return float64(h) / (1 << 32)
}

// unit8 maps [0, 1] to a byte, clamping.
func unit8(v float64) uint8 {
	return uint8(math.Round(math.Max(0, math.Min(1, v)) * 255))
}
