package demo

import "fmt"

// section is one numbered section of the article page.
type section struct {
	Number     int
	Heading    string
	Paragraphs []string
}

// articleHeadings are the article's section headings, in order; section N
// gets the id "sec-N".
var articleHeadings = []string{
	"ガイドラインの目的",
	"対象となる患者",
	"診断の手順",
	"初期治療",
	"薬物療法の選択",
	"副作用の監視",
	"高齢者への配慮",
	"腎機能障害のある患者",
	"小児への投与",
	"患者への説明",
	"多職種連携",
	"参考情報",
}

// articleSentences are combined into the article's paragraphs. The text is
// fictitious; it only has to look like a clinical guideline and fill the page.
var articleSentences = []string{
	"本ガイドラインは、日常診療における標準的な考え方を示すものであり、個々の患者の状態に応じた判断を妨げるものではありません。",
	"推奨の強さは、エビデンスの確実性と益と害のバランスを考慮して決定しました。",
	"投与開始前には、既往歴、併用薬、アレルギー歴を必ず確認してください。",
	"検査値の変化は経時的に評価し、単回の測定値だけで判断しないことが重要です。",
	"症状が改善しない場合には、診断の見直しと専門医への相談を検討してください。",
	"患者と家族には、治療の目的、期待される効果、起こりうる副作用をわかりやすく説明します。",
	"薬剤師、看護師と情報を共有し、服薬状況と副作用の早期発見に努めてください。",
}

// articleSections is the article's content, built once: 12 sections of two
// paragraphs each, several screen heights in all.
var articleSections = buildArticle()

func buildArticle() []section {
	sections := make([]section, 0, len(articleHeadings))
	for i, heading := range articleHeadings {
		s := section{Number: i + 1, Heading: heading}
		for p := range 2 {
			text := fmt.Sprintf("(%d-%d) ", i+1, p+1)
			for k := range 3 {
				text += articleSentences[(i+p*3+k)%len(articleSentences)]
			}
			s.Paragraphs = append(s.Paragraphs, text)
		}
		sections = append(sections, s)
	}
	return sections
}
