"""llmd and LangChain: a LangChain app's own runs published into llmd.

Importing this module needs ``langchain-core``; the rest of the package does not.
"""

from ._reporting import LlmdCallbackHandler

__all__ = ["LlmdCallbackHandler"]
