from django.conf import settings


def portal(request):
    return {"organization_name": settings.PORTAL_ORGANIZATION_NAME}
