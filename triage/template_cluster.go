package triage

import (
	"slices"
	"strconv"
	"strings"
)

// Parameters of template clustering, after Drain (He et al., "Drain: An
// Online Log Parsing Approach with Fixed Depth Tree", ICWS 2017).
const (
	// clusterSimilarity is the share of a template's tokens that must equal
	// a cluster's for the template to join it. Drain tunes it per log
	// source (0.2 to 0.7 in the paper, 0.4 in Drain3); templates here are
	// already masked, so what still differs is mostly words, and a higher
	// bar keeps two different failures of one state apart.
	clusterSimilarity = 0.7
	// clusterPrefix is how many leading tokens pick a template's leaf after
	// its token count: Drain's tree depth less the root and length layers.
	// Drain uses two; one keeps a value that masking missed in the second
	// token (a user name, "user alice is locked out") from splitting a
	// failure, at the price of larger leaves.
	clusterPrefix = 1
	// clusterMaxChildren bounds a tree node's children; further templates
	// go under the wildcard child, as in Drain.
	clusterMaxChildren = 100
)

// ClusterTemplates groups templates (results of Mask) that differ only in a
// few tokens, the way Drain mines log templates: a fixed-depth prefix tree
// sends each template to a leaf by its token count and its first token
// (a token holding a placeholder goes to the wildcard branch), and within
// the leaf it joins the most similar cluster when at least 70 % of their
// tokens are equal position by position; otherwise it starts a cluster.
// Clusters of one leaf that become similar after merging are merged too.
//
// It returns, for each template given, the template of its cluster: the
// tokens on which all members agree, and <*> where they differ. A template
// that clusters with no other maps to itself.
//
// The result depends on the set of templates only, not on their order or
// repetitions: they are deduplicated and sorted first. The same failures
// therefore give the same cluster templates, and keys made from them, on
// every run.
//
// Cluster the templates of one state (one Fun, state id and sls; or one
// sls's compile errors) at a time: two states failing in similar words are
// two failures.
func ClusterTemplates(templates []string) map[string]string {
	uniq := slices.Clone(templates)
	slices.Sort(uniq)
	uniq = slices.Compact(uniq)

	root := &clusterNode{}
	var leaves []*clusterLeaf
	for _, t := range uniq {
		toks := strings.Split(t, " ")
		leaf := root.find(toks, &leaves)
		leaf.add(t, toks)
	}
	out := make(map[string]string, len(uniq))
	for _, l := range leaves {
		l.settle()
		for _, c := range l.clusters {
			merged := strings.Join(c.tokens, " ")
			for _, m := range c.members {
				out[m] = merged
			}
		}
	}
	return out
}

type clusterNode struct {
	children map[string]*clusterNode
	leaf     *clusterLeaf
}

type clusterLeaf struct {
	clusters []*templateCluster
}

type templateCluster struct {
	tokens  []string
	members []string
}

// leaf walks the tree by token count, then by leading tokens.
func (n *clusterNode) find(toks []string, leaves *[]*clusterLeaf) *clusterLeaf {
	keys := make([]string, 0, 1+clusterPrefix)
	keys = append(keys, strconv.Itoa(len(toks)))
	for i := 0; i < clusterPrefix && i < len(toks); i++ {
		keys = append(keys, toks[i])
	}
	for depth, k := range keys {
		if depth > 0 && strings.Contains(k, "<") {
			k = Wild
		}
		if n.children == nil {
			n.children = map[string]*clusterNode{}
		}
		next, ok := n.children[k]
		if !ok {
			if depth > 0 && len(n.children) >= clusterMaxChildren {
				k = Wild
				next = n.children[k]
			}
			if next == nil {
				next = &clusterNode{}
				n.children[k] = next
			}
		}
		n = next
	}
	if n.leaf == nil {
		n.leaf = &clusterLeaf{}
		*leaves = append(*leaves, n.leaf)
	}
	return n.leaf
}

// add puts a template into the most similar cluster of the leaf, or a new
// one. Ties go to the cluster with fewer wildcards, then the older.
func (l *clusterLeaf) add(t string, toks []string) {
	var best *templateCluster
	bestSim, bestWild := -1.0, 0
	for _, c := range l.clusters {
		sim := similarity(c.tokens, toks)
		w := wildcards(c.tokens)
		if sim > bestSim || sim == bestSim && w < bestWild {
			best, bestSim, bestWild = c, sim, w
		}
	}
	if best != nil && bestSim >= clusterSimilarity {
		mergeTokens(best.tokens, toks)
		best.members = append(best.members, t)
		return
	}
	l.clusters = append(l.clusters, &templateCluster{tokens: slices.Clone(toks), members: []string{t}})
}

// settle merges clusters of the leaf that became similar as they grew, so
// that the outcome depends less on which template came first.
func (l *clusterLeaf) settle() {
	for merged := true; merged; {
		merged = false
		for i := 0; i < len(l.clusters) && !merged; i++ {
			for j := i + 1; j < len(l.clusters); j++ {
				a, b := l.clusters[i], l.clusters[j]
				if similarity(a.tokens, b.tokens) >= clusterSimilarity {
					mergeTokens(a.tokens, b.tokens)
					a.members = append(a.members, b.members...)
					l.clusters = slices.Delete(l.clusters, j, j+1)
					merged = true
					break
				}
			}
		}
	}
}

// similarity is the share of positions at which two token lists of equal
// length agree.
func similarity(a, b []string) float64 {
	if len(a) == 0 {
		return 1
	}
	same := 0
	for i := range a {
		if a[i] == b[i] {
			same++
		}
	}
	return float64(same) / float64(len(a))
}

// mergeTokens turns into <*> the tokens of dst that differ in src.
func mergeTokens(dst, src []string) {
	for i := range dst {
		if dst[i] != src[i] {
			dst[i] = Wild
		}
	}
}

func wildcards(toks []string) int {
	n := 0
	for _, t := range toks {
		if t == Wild {
			n++
		}
	}
	return n
}
