"""The WSGI application (gunicorn: portal/gunicorn_conf.py): Django, with OCSP ahead of most of it.

OCSP (/ocsp/<ca>) is the one public endpoint asked at machine rates, by every mail client for
every signature it checks (issue 13). Through the whole middleware stack an answer took 1.7 ms
of sessions, CSRF, authentication, the second factor and the lockout that an anonymous DER
request never uses, beside a signature of well under 1 ms. `OcspFastPath` serves the URLs of
`enrollment.revocation.urls.ocsp_urlpatterns` with the same view and the middleware that
matters for any answer (the proxy's client address and scheme, security headers, the outage
answer, the host check); every other request, and an address none of those patterns matches,
goes to Django's handler as before. `runserver` and the test client use Django's handler
alone: the view answers the same there, through all the middleware.
"""

import os

from django.core import signals
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIRequest, get_path_info, get_script_name
from django.core.wsgi import get_wsgi_application
from django.urls import Resolver404, URLResolver, set_script_prefix
from django.urls.resolvers import RegexPattern
from django.utils.module_loading import import_string

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django_application = get_wsgi_application()

# What an anonymous OCSP request does not need (the view is csrf_exempt and reads no session or user).
NOT_FOR_OCSP = frozenset(
    {
        "whitenoise.middleware.WhiteNoiseMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django_otp.middleware.OTPMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "portal.sessions.SessionPolicyMiddleware",
        "portal.second_factor_guards.SecondFactorMiddleware",
        "axes.middleware.AxesMiddleware",
    }
)


class OcspFastPath:
    """WSGI: the OCSP URLs through a short middleware chain, everything else to `fallback`."""

    def __init__(self, fallback, *, middleware: list[str]):
        from enrollment.revocation.urls import ocsp_urlpatterns

        self.fallback = fallback
        self.resolver = URLResolver(RegexPattern(r"^/"), ocsp_urlpatterns)
        # Built as Django's handler builds its chain (BaseHandler.load_middleware), innermost last.
        handler = convert_exception_to_response(self._view)
        self._exception_middleware = []
        for path in reversed([entry for entry in middleware if entry not in NOT_FOR_OCSP]):
            instance = import_string(path)(handler)
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(instance.process_exception)
            handler = convert_exception_to_response(instance)
        self.handler = handler

    def __call__(self, environ, start_response):
        try:
            match = self.resolver.resolve(get_path_info(environ))
        except Resolver404:
            return self.fallback(environ, start_response)
        # As Django's WSGIHandler: the signals open and close the request's database use
        # (close_old_connections; request_finished is sent by response.close()).
        set_script_prefix(get_script_name(environ))
        signals.request_started.send(sender=self.__class__, environ=environ)
        request = WSGIRequest(environ)
        request.resolver_match = match
        response = self.handler(request)
        response._handler_class = self.__class__
        status = f"{response.status_code} {response.reason_phrase}"
        headers = [
            *response.items(),
            *(("Set-Cookie", cookie.output(header="")) for cookie in response.cookies.values()),
        ]
        start_response(status, headers)
        return response

    def _view(self, request):
        match = request.resolver_match
        try:
            return match.func(request, *match.args, **match.kwargs)
        except Exception as exc:
            for process_exception in self._exception_middleware:  # e.g. the outage answer
                if (response := process_exception(request, exc)) is not None:
                    return response
            raise


def _application():
    from django.conf import settings

    return OcspFastPath(django_application, middleware=list(settings.MIDDLEWARE))


application = _application()

# manage.py runs the system checks before it serves; a WSGI server (gunicorn) does not, so a
# bad setting (e.g. PORTAL_OCSP_SIGNER=bogus) would otherwise serve until the first request
# that reads it.
from portal.checks_deploy import settings_problems  # noqa: E402 - needs the app registry set up above

if problems := settings_problems():
    raise ImproperlyConfigured("; ".join(str(problem) for problem in problems))
