"""The LLM assistant: conversations streamed through litellm, grounded in WindFlow's own data, whose
every proposed playbook or stack arrives with evidence from real checks."""
