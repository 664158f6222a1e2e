"""One pagination for every API list: ?page=N&page_size=M (default 50, at most 200)."""

from rest_framework.pagination import PageNumberPagination


class PortalPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    page_size_query_description = "Items per page (1 to 200; default 50)."
    max_page_size = 200
    invalid_page_message = "There is no page {page_number}: {message}"
