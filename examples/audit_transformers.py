"""Audit models fanin did not write: transformers' BERT, GPT-2 and Llama built from tiny configs
(their own _init_weights, no download), then diff two GPT-2s built with different seeds.

    pip install 'fanin[test]'      # transformers and safetensors
    python examples/audit_transformers.py
"""

import warnings

import torch
from rich.console import Console

import fanin
from fanin.report.audit import render_audit_markdown, render_diff_table


def main() -> None:
    from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    def gpt2(seed):
        torch.manual_seed(seed)
        return GPT2LMHeadModel(
            GPT2Config(n_embd=64, n_layer=2, n_head=2, vocab_size=300, n_positions=64, bos_token_id=0, eos_token_id=0)
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = {
            "GPT-2": gpt2(0),
            "BERT": BertModel(
                BertConfig(
                    hidden_size=64,
                    num_hidden_layers=2,
                    num_attention_heads=2,
                    intermediate_size=128,
                    vocab_size=300,
                    max_position_embeddings=64,
                )
            ),
            "Llama": LlamaForCausalLM(
                LlamaConfig(
                    hidden_size=64,
                    num_hidden_layers=2,
                    num_attention_heads=2,
                    num_key_value_heads=2,
                    intermediate_size=128,
                    vocab_size=300,
                    bos_token_id=0,
                    eos_token_id=0,
                )
            ),
        }
    for name, model in models.items():
        print(f"## {name}\n")
        print(render_audit_markdown(fanin.audit(model)))
    Console().print(render_diff_table(fanin.diff(models["GPT-2"], gpt2(1))))


if __name__ == "__main__":
    main()
