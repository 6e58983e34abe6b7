"""Parts every widget family uses: requests off the kernel's loop (``requests``,
``state_requests``), the status line (``status``), controls, layer menus, heatmap panels and
their fitting (``panels``, ``fit_width``), display maps (``maps``), images, exports
(``download``) and closing what a widget built (``lifecycle``). Imports no family."""
