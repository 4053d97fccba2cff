package httpapi

import (
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/centric-crm/centric/api"
)

// rawContract returns the embedded contract as block-style YAML, keys in their original order.
func rawContract() ([]byte, error) {
	specJSON, err := api.GetSpecJSON()
	if err != nil {
		return nil, fmt.Errorf("load contract: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(specJSON, &doc); err != nil {
		return nil, fmt.Errorf("parse contract: %w", err)
	}
	blockStyle(&doc)
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, fmt.Errorf("encode contract: %w", err)
	}
	return out, nil
}

// blockStyle clears the flow style that parsing JSON leaves on every node.
func blockStyle(n *yaml.Node) {
	n.Style &^= yaml.FlowStyle
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		n.Style &^= yaml.DoubleQuotedStyle
	}
	for _, child := range n.Content {
		blockStyle(child)
	}
}
