<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:f="urn:drehscheibe:test:f" exclude-result-prefixes="#all">
  <!-- xsl:sort on several keys with types, orders and a computed key. -->
  <xsl:template match="/antraege">
    <listen>
      <nach-art-betrag>
        <xsl:for-each select="antrag">
          <xsl:sort select="@art"/>
          <xsl:sort select="xs:decimal(@betrag)" order="descending"/>
          <a id="{@id}"/>
        </xsl:for-each>
      </nach-art-betrag>
      <nach-eingang-name>
        <xsl:apply-templates select="antrag">
          <xsl:sort select="xs:date(@eingang)"/>
          <xsl:sort select="name" order="descending"/>
          <xsl:sort select="vorname"/>
        </xsl:apply-templates>
      </nach-eingang-name>
      <nach-alter>
        <xsl:for-each select="antrag">
          <xsl:sort select="geburt" data-type="text" order="descending"/>
          <a id="{@id}" geb="{geburt}"/>
        </xsl:for-each>
      </nach-alter>
      <numerisch>
        <xsl:for-each select="antrag">
          <xsl:sort select="@plz" data-type="number"/>
          <xsl:sort select="@id" order="descending"/>
          <a id="{@id}" plz="{@plz}"/>
        </xsl:for-each>
      </numerisch>
      <stabil>
        <xsl:for-each select="antrag">
          <xsl:sort select="@status" stable="yes"/>
          <a id="{@id}" s="{@status}"/>
        </xsl:for-each>
      </stabil>
    </listen>
  </xsl:template>
  <xsl:template match="antrag"><a id="{@id}" d="{@eingang}"/></xsl:template>
</xsl:stylesheet>
